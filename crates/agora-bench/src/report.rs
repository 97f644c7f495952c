//! Printing results: Markdown tables (so that a run pastes into `docs/benchmarks.md`) and number formats.

use std::time::Duration;

/// A table printed as Markdown: the leading text columns left-aligned, the figures right-aligned.
pub struct Table {
    text_columns: usize,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first `text_columns` columns hold text and the rest figures.
    pub fn new(text_columns: usize, headers: &[&str]) -> Self {
        Self {
            text_columns,
            headers: headers.iter().map(|header| (*header).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(
            cells.len(),
            self.headers.len(),
            "a row has as many cells as the table has columns"
        );
        self.rows.push(cells);
    }

    pub fn print(&self) {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|column| {
                std::iter::once(&self.headers[column])
                    .chain(self.rows.iter().map(|row| &row[column]))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(column, (cell, width))| {
                    if column < self.text_columns {
                        format!("{cell:<width$}")
                    } else {
                        format!("{cell:>width$}")
                    }
                })
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        println!("{}", line(&self.headers));
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(column, width)| {
                if column < self.text_columns {
                    "-".repeat(*width)
                } else {
                    format!("{}:", "-".repeat(width - 1))
                }
            })
            .collect();
        println!("| {} |", rule.join(" | "));
        for row in &self.rows {
            println!("{}", line(row));
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// A rate per second, rounded to a whole number.
pub fn rate(per_second: f64) -> String {
    count(per_second.round() as u64)
}

/// A latency in microseconds below a millisecond (with a decimal below ten), in milliseconds above.
pub fn latency(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 10.0 {
        format!("{micros:.1} µs")
    } else if micros < 1_000.0 {
        format!("{micros:.0} µs")
    } else {
        format!("{:.2} ms", micros / 1_000.0)
    }
}

pub fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

/// A ratio against a goal it should reach, with the verdict.
pub fn ratio_line(what: &str, ratio: f64, goal: Option<f64>) {
    match goal {
        Some(goal) => {
            let verdict = if ratio >= goal { "met" } else { "missed" };
            println!("{what}: {ratio:.3} (goal at least {goal}: {verdict})");
        }
        None => println!("{what}: {ratio:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        let shown: Vec<String> = [0, 12, 999, 1_000, 12_345, 1_234_567]
            .into_iter()
            .map(count)
            .collect();
        assert_eq!(shown, ["0", "12", "999", "1,000", "12,345", "1,234,567"]);
    }

    #[test]
    fn latencies_keep_two_or_three_digits() {
        assert_eq!(latency(Duration::from_nanos(420)), "0.4 µs");
        assert_eq!(latency(Duration::from_micros(870)), "870 µs");
        assert_eq!(latency(Duration::from_micros(1_250)), "1.25 ms");
    }
}
