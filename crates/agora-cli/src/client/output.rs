//! What the client commands print: aligned tables for people, the API's JSON for scripts.

use std::io::Write;

use agora_domain::Timestamp;
use clap::ValueEnum;

use crate::Failure;

/// How a command prints its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns with upper-case headers, for people.
    #[default]
    Table,
    /// The API's JSON, pretty-printed: one object, or an array of every item of a list.
    Json,
}

/// A table of text cells, printed with columns aligned on the widest cell.
#[derive(Debug)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|header| (*header).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(
            cells.len(),
            self.headers.len(),
            "a row has one cell per header"
        );
        self.rows.push(cells);
    }

    /// The table as text; `empty` (such as "No organisations.") when it has no rows.
    pub fn render(&self, empty: &str) -> String {
        if self.rows.is_empty() {
            return format!("{empty}\n");
        }
        let mut widths: Vec<usize> = self
            .headers
            .iter()
            .map(|header| header.chars().count())
            .collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        let header_cells: Vec<String> = self
            .headers
            .iter()
            .map(|header| header.to_uppercase())
            .collect();
        for cells in std::iter::once(&header_cells).chain(&self.rows) {
            let mut line = String::new();
            for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
                if index > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                // The last column is not padded, so that lines carry no trailing spaces.
                if index + 1 < cells.len() {
                    line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// Writes to standard output. A closed pipe (`agora audit log | head`) is not an error.
pub fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(anyhow::Error::new(error)
            .context("cannot write to standard output")
            .into()),
    }
}

/// Prints a JSON document, pretty, on standard output.
pub fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value).expect("a JSON value serializes");
    text.push('\n');
    print(&text)
}

/// A time for a table cell: RFC 3339 to the second (the JSON keeps the microseconds).
pub fn time(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    match text.split_once('.') {
        Some((seconds, _fraction)) => format!("{seconds}Z"),
        None => text,
    }
}

/// An optional time for a table cell.
pub fn optional_time(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "-".to_owned(), time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_say_when_empty() {
        let mut table = Table::new(&["id", "name", "status"]);
        table.row(vec![
            "org_1".into(),
            "Agora Operator".into(),
            "active".into(),
        ]);
        table.row(vec!["org_22".into(), "Ünïcode".into(), "".into()]);
        assert_eq!(
            table.render("No organisations."),
            "ID      NAME            STATUS\norg_1   Agora Operator  active\norg_22  Ünïcode\n"
        );
        assert_eq!(
            Table::new(&["id"]).render("No organisations."),
            "No organisations.\n"
        );
    }

    #[test]
    fn table_times_drop_the_fraction() {
        assert_eq!(
            time(Timestamp::from_micros(1_763_880_000_123_456)),
            "2025-11-23T06:40:00Z"
        );
    }
}
