//! One table type for every table the suite prints or writes, rendered as Markdown, CSV
//! (the `csv` crate) or JSON (an array of objects keyed by column name). Build a [`Table`]
//! once; pick the printer at the edge.

use anyhow::Result;
use serde::Serialize;

/// How a column's cells line up in Markdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    Left,
    Right,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    pub name: String,
    pub align: Align,
}

/// Rows of cells under named columns. Cells are already formatted (units included).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns; a name ending in `>` is right-aligned (the `>` dropped).
    pub fn new<S: AsRef<str>>(columns: &[S]) -> Self {
        let columns = columns
            .iter()
            .map(|c| {
                let c = c.as_ref();
                match c.strip_suffix('>') {
                    Some(n) => Column {
                        name: n.to_string(),
                        align: Align::Right,
                    },
                    None => Column {
                        name: c.to_string(),
                        align: Align::Left,
                    },
                }
            })
            .collect();
        Table {
            columns,
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are left empty, extra cells are an error of the caller.
    pub fn push<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).collect();
        debug_assert!(
            row.len() <= self.columns.len(),
            "row of {} cells in a table of {} columns",
            row.len(),
            self.columns.len()
        );
        row.resize(self.columns.len(), String::new());
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// GitHub-flavoured Markdown, ending with a newline. `|` inside a cell is escaped.
    pub fn markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut o = String::new();
        o.push('|');
        for c in &self.columns {
            o.push_str(&format!(" {} |", esc(&c.name)));
        }
        o.push_str("\n|");
        for c in &self.columns {
            o.push_str(match c.align {
                Align::Left => "---|",
                Align::Right => "---:|",
            });
        }
        o.push('\n');
        for r in &self.rows {
            o.push('|');
            for cell in r {
                o.push_str(&format!(" {} |", esc(cell)));
            }
            o.push('\n');
        }
        o
    }

    /// CSV with a header row.
    pub fn csv(&self) -> Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(self.columns.iter().map(|c| c.name.as_str()))?;
        for r in &self.rows {
            w.write_record(r)?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }

    /// An array of objects, one per row, keyed by column name.
    pub fn json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    serde_json::Value::Object(
                        self.columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| (c.name.clone(), serde_json::Value::from(v.as_str())))
                            .collect(),
                    )
                })
                .collect(),
        )
    }
}
