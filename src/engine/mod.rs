//! Managed database engines (PostgreSQL, MySQL/MariaDB, SQLite) behind one
//! trait. All catalog SQL for managed databases lives under this module; the
//! registry issue fills it in.
