//! PostgreSQL statements, split by squawk's parser (the one the lint uses),
//! and which of them PostgreSQL refuses inside a transaction block.

use squawk_syntax::ast::AstNode;

/// The statements of a migration, as written (comments between them
/// dropped), for running one at a time outside a transaction.
pub fn statements(sql: &str) -> Vec<String> {
    let parse = squawk_syntax::SourceFile::parse(sql);
    parse
        .tree()
        .stmts()
        .map(|s| s.syntax().text().to_string())
        .collect()
}

/// The statements of a migration with the 1-based line each starts on.
pub fn statements_with_lines(sql: &str) -> Vec<(String, usize)> {
    let parse = squawk_syntax::SourceFile::parse(sql);
    parse
        .tree()
        .stmts()
        .map(|s| {
            let node = s.syntax();
            // The statement's first token, past leading comments and space.
            let text = node.text().to_string();
            let skip = text.len() - text.trim_start().len();
            let at = usize::from(node.text_range().start()) + skip;
            let line = sql[..at.min(sql.len())].matches('\n').count() + 1;
            (text.trim().to_string(), line)
        })
        .collect()
}

/// Does this migration hold a statement PostgreSQL refuses inside a
/// transaction block (CREATE/DROP INDEX CONCURRENTLY, REINDEX
/// CONCURRENTLY, VACUUM, CREATE/DROP DATABASE, ALTER SYSTEM)?
pub fn needs_no_transaction(sql: &str) -> bool {
    statements(sql).iter().any(|s| {
        let upper = s.to_uppercase();
        let words: Vec<&str> = upper.split_whitespace().collect();
        let concurrently = words.contains(&"CONCURRENTLY")
            && matches!(words.first(), Some(&"CREATE") | Some(&"DROP") | Some(&"REINDEX"))
            && words.iter().any(|w| *w == "INDEX" || *w == "REINDEX");
        concurrently
            || matches!(words.first(), Some(&"VACUUM"))
            || matches!(
                words.as_slice(),
                ["CREATE" | "DROP", "DATABASE", ..] | ["ALTER", "SYSTEM", ..]
            )
    })
}
