//! The states and kinds the panel stores as TEXT: a job's state and kind, a
//! backup's state, an audit row's action. Each enum's `as_str()` is exactly
//! the text in the store and in the JSON API, so both stores keep the rows
//! they have (no data migration) and scripts reading `state` see the same
//! words.
//!
//! Reading a value back is strict: an unknown text is an [`UnknownValue`]
//! error (a decode error from the store, a 500 that names the value), never
//! a panic and never a silent default. The store reads them straight from
//! their TEXT columns (`store/text.rs`) and binds `as_str()`, so this module
//! needs nothing from sqlx.

/// A stored text that names no variant of the enum it should be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownValue {
    /// What was read: "job state", "backup state", …
    pub what: &'static str,
    pub value: String,
}

/// An enum stored as TEXT: its variants, their texts, `ALL` and `NAMES` in
/// declaration order, `as_str`, parsing with [`UnknownValue`], `Display`,
/// and serde as the plain text. The one way the panel writes such an enum
/// (jobs, backups, audit here; alerts, webhooks and migration requests in
/// the store); `store/text.rs` gives each its TEXT column.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];
            /// Every variant's text, in declaration order.
            pub const NAMES: [&'static str; [$($text),+].len()] = [$($text),+];

            /// The text in the store and the JSON API.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::domain::UnknownValue { what: $what, value: s.to_string() }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::domain::UnknownValue;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use text_enum;

text_enum! {
    /// Where a job is in its life: queued → running → one of the four ends.
    /// A job the panel died under is interrupted, never succeeded.
    pub enum JobState ("job state") {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        Interrupted = "interrupted",
    }
}

impl JobState {
    /// Queued or running: not ended yet (pages keep polling it, it can be
    /// cancelled).
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }
}

text_enum! {
    /// What a job does. The maintenance kinds carry the names of the
    /// engine's maintenance actions (`engine::Action::as_str`); the service
    /// maps between the two (`service::maintenance::job_kind`).
    pub enum JobKind ("job kind") {
        Backup = "backup",
        Verify = "verify",
        Restore = "restore",
        Prune = "prune",
        Migrate = "migrate",
        Vacuum = "vacuum",
        VacuumAnalyze = "vacuum_analyze",
        Analyze = "analyze",
        VacuumFull = "vacuum_full",
        Reindex = "reindex",
        Optimize = "optimize",
        Check = "check",
        IntegrityCheck = "integrity_check",
        /// pgBackRest: a full, differential or incremental physical backup.
        PhysicalBackup = "physical_backup",
        /// pgBackRest: expire by its own retention, after each backup.
        Expire = "expire",
        /// pgBackRest: `stanza-create`.
        StanzaCreate = "stanza_create",
        /// pgBackRest: `check` (archiving works end to end).
        StanzaCheck = "stanza_check",
        /// pgBackRest: `verify` (the repository's backups and WAL are whole).
        RepoVerify = "repo_verify",
        /// Point-in-time recovery into a new server.
        PitrRestore = "pitr_restore",
        /// A scheduled restore to a random point, proven and discarded.
        Drill = "drill",
        /// Stop and delete a restored server, and unregister it.
        Discard = "discard",
    }
}

impl JobKind {
    /// What the job does, in the words people use ("VACUUM ANALYZE",
    /// "Restore test"); the pages show this, the store and API `as_str`.
    pub fn label(self) -> &'static str {
        match self {
            JobKind::Backup => "Backup",
            JobKind::Verify => "Restore test",
            JobKind::Restore => "Restore",
            JobKind::Prune => "Prune old backups",
            JobKind::Migrate => "Migrate",
            JobKind::Vacuum => "VACUUM",
            JobKind::VacuumAnalyze => "VACUUM ANALYZE",
            JobKind::Analyze => "ANALYZE",
            JobKind::VacuumFull => "VACUUM FULL",
            JobKind::Reindex => "REINDEX",
            JobKind::Optimize => "OPTIMIZE TABLE",
            JobKind::Check => "CHECK TABLE",
            JobKind::IntegrityCheck => "PRAGMA integrity_check",
            JobKind::PhysicalBackup => "Physical backup (pgBackRest)",
            JobKind::Expire => "Expire old backups (pgBackRest)",
            JobKind::StanzaCreate => "Create stanza (pgBackRest)",
            JobKind::StanzaCheck => "Check archiving (pgBackRest)",
            JobKind::RepoVerify => "Verify repository (pgBackRest)",
            JobKind::PitrRestore => "Point-in-time restore",
            JobKind::Drill => "Recovery drill",
            JobKind::Discard => "Discard restored server",
        }
    }
}

text_enum! {
    /// A point-in-time restore into a new server: restoring → ready (its
    /// server runs and is registered) → discarded; a drill ends passed or
    /// failed (its server discarded either way).
    pub enum RestoreState ("restore state") {
        Restoring = "restoring",
        Ready = "ready",
        Passed = "passed",
        Failed = "failed",
        Interrupted = "interrupted",
        Discarded = "discarded",
    }
}

text_enum! {
    /// A backup in the catalog. Only `good` is finished and checksummed, so
    /// only it counts for the RPO, verification and restores.
    pub enum BackupState ("backup state") {
        Running = "running",
        Good = "good",
        Failed = "failed",
        Cancelled = "cancelled",
        Interrupted = "interrupted",
        /// Deleted by the retention policy.
        Pruned = "pruned",
    }
}

impl BackupState {
    /// Finished and checksummed: the only state a backup can be verified,
    /// restored or counted against the RPO in.
    pub fn is_good(self) -> bool {
        self == BackupState::Good
    }
}

text_enum! {
    /// What an audit row records. The audit page's action filter lists
    /// these, in this order.
    pub enum AuditAction ("audit action") {
        Login = "login",
        Logout = "logout",
        Setup = "setup",
        AccessDenied = "access.denied",
        UserCreate = "user.create",
        UserRole = "user.role",
        UserDisable = "user.disable",
        UserEnable = "user.enable",
        UserPassword = "user.password",
        AccountPassword = "account.password",
        TokenCreate = "token.create",
        TokenRevoke = "token.revoke",
        DbCreate = "db.create",
        DbUpdate = "db.update",
        DbDelete = "db.delete",
        SessionCancel = "session.cancel",
        SessionTerminate = "session.terminate",
        StatementsReset = "statements.reset",
        JobStart = "job.start",
        JobCancel = "job.cancel",
        JobEnd = "job.end",
        BackupPruneRemoved = "backup.prune_removed",
        MigrationRequest = "migration.request",
        MigrationSubmit = "migration.submit",
        MigrationApprove = "migration.approve",
        MigrationReject = "migration.reject",
        MigrationApply = "migration.apply",
        AlertAck = "alert.ack",
        AlertSilence = "alert.silence",
        AlertUnsilence = "alert.unsilence",
        AlertRule = "alert.rule",
        WebhookCreate = "webhook.create",
        WebhookDelete = "webhook.delete",
        RecoveryRestore = "recovery.restore",
        RecoveryDiscard = "recovery.discard",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T], names: &[&str])
    where
        T: Copy
            + std::fmt::Debug
            + PartialEq
            + std::str::FromStr<Err = UnknownValue>
            + serde::Serialize
            + std::fmt::Display,
    {
        assert_eq!(all.len(), names.len());
        for (v, name) in all.iter().zip(names) {
            assert_eq!(&v.to_string(), name);
            assert_eq!(name.parse::<T>().unwrap(), *v);
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(name));
        }
        let mut sorted = names.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "two variants share a text");
    }

    #[test]
    fn every_variant_round_trips_through_its_text() {
        round_trips(&JobState::ALL, &JobState::NAMES);
        round_trips(&JobKind::ALL, &JobKind::NAMES);
        round_trips(&BackupState::ALL, &BackupState::NAMES);
        round_trips(&AuditAction::ALL, &AuditAction::NAMES);
        round_trips(&RestoreState::ALL, &RestoreState::NAMES);
    }

    #[test]
    fn the_stored_texts_stay_what_they_were() {
        assert_eq!(
            JobState::NAMES,
            [
                "queued",
                "running",
                "succeeded",
                "failed",
                "cancelled",
                "interrupted"
            ]
        );
        assert_eq!(
            BackupState::NAMES,
            ["running", "good", "failed", "cancelled", "interrupted", "pruned"]
        );
        assert_eq!(AuditAction::JobEnd.as_str(), "job.end");
        assert_eq!(AuditAction::AccessDenied.as_str(), "access.denied");
    }

    #[test]
    fn an_unknown_text_is_an_error_that_names_it() {
        let err = "finished".parse::<JobState>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown job state "finished""#);
        assert!(BackupState::try_from("Good".to_string()).is_err());
        assert!(serde_json::from_str::<JobKind>(r#""dump""#).is_err());
        assert_eq!(
            serde_json::from_str::<JobKind>(r#""vacuum_full""#).unwrap(),
            JobKind::VacuumFull
        );
    }

    #[test]
    fn only_queued_and_running_are_active() {
        let active: Vec<JobState> = JobState::ALL.into_iter().filter(|s| s.is_active()).collect();
        assert_eq!(active, [JobState::Queued, JobState::Running]);
    }
}
