//! Reading `outdial import`'s file: CSV (header row = the seed's field names, an unknown
//! column refused before any row is read) or NDJSON, one row at a time.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::Context;
use outdial_domain::customer::INPUT_FIELDS;
use serde_json::{Map, Value, json};

use super::Format;

/// One row read from the file: where it was and its JSON object.
pub(super) struct Read {
    pub(super) line: u64,
    pub(super) body: Value,
}

/// Reads rows one at a time from CSV or NDJSON.
pub(super) enum Rows {
    Csv {
        reader: csv::Reader<Box<dyn std::io::Read>>,
        headers: Vec<String>,
        record: csv::StringRecord,
    },
    Ndjson {
        lines: std::io::Lines<BufReader<Box<dyn std::io::Read>>>,
        line: u64,
    },
}

fn open(path: &Path) -> anyhow::Result<Box<dyn std::io::Read>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin()));
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(file))
}

impl Rows {
    pub(super) fn open(path: &Path, format: Format) -> anyhow::Result<Rows> {
        let input = open(path)?;
        match format {
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
                let headers: Vec<String> = reader
                    .headers()
                    .context("cannot read the CSV header row")?
                    .iter()
                    .map(|h| h.trim().to_owned())
                    .collect();
                if let Some(bad) = headers.iter().find(|h| !INPUT_FIELDS.contains(&h.as_str())) {
                    anyhow::bail!(
                        "the CSV column {bad:?} is not a customer field; the columns are the \
                         seed's field names: {}",
                        INPUT_FIELDS.join(", ")
                    );
                }
                if !headers.iter().any(|h| h == "id") {
                    anyhow::bail!("the CSV has no id column");
                }
                Ok(Rows::Csv {
                    reader,
                    headers,
                    record: csv::StringRecord::new(),
                })
            }
            Format::Ndjson => Ok(Rows::Ndjson {
                lines: BufReader::new(input).lines(),
                line: 0,
            }),
        }
    }

    pub(super) fn next(&mut self) -> anyhow::Result<Option<Read>> {
        match self {
            Rows::Csv {
                reader,
                headers,
                record,
            } => {
                match reader.read_record(record) {
                    Ok(false) => return Ok(None),
                    Ok(true) => {}
                    Err(e) => {
                        // A record with the wrong number of fields is one rejected row.
                        let line = e.position().map_or(0, |p| p.line());
                        if let csv::ErrorKind::UnequalLengths { .. } = e.kind() {
                            return Ok(Some(Read {
                                line,
                                body: json!({"$malformed": format!(
                                    "line {line} does not have {} fields", headers.len())}),
                            }));
                        }
                        return Err(e).context("cannot read the CSV file");
                    }
                }
                let line = record.position().map_or(0, |p| p.line());
                Ok(Some(Read {
                    line,
                    body: Value::Object(csv_row(headers, record)),
                }))
            }
            Rows::Ndjson { lines, line } => loop {
                let Some(text) = lines.next() else {
                    return Ok(None);
                };
                *line += 1;
                let text = text.context("cannot read the file")?;
                if text.trim().is_empty() {
                    continue;
                }
                let body = serde_json::from_str(&text).unwrap_or_else(
                    |e| json!({"$malformed": format!("line {line} is not valid JSON: {e}")}),
                );
                return Ok(Some(Read { line: *line, body }));
            },
        }
    }
}

/// A CSV record as the JSON object `POST /customers` takes: empty cells are absent,
/// booleans, `loanIds` (`1;2` or a JSON array) and `externalMetadata` (JSON) typed; a cell
/// that does not convert stays text, so validation names its field.
fn csv_row(headers: &[String], record: &csv::StringRecord) -> Map<String, Value> {
    let mut object = Map::new();
    for (name, cell) in headers.iter().zip(record.iter()) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        let value = match name.as_str() {
            "doNotCall" | "isTest" | "test" | "sync" => match cell.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "y" => Value::Bool(true),
                "false" | "0" | "no" | "n" => Value::Bool(false),
                _ => Value::from(cell),
            },
            "loanIds" if cell.starts_with('[') => {
                serde_json::from_str(cell).unwrap_or_else(|_| Value::from(cell))
            }
            "loanIds" => {
                let ids: Option<Vec<Value>> = cell
                    .split([';', '|', ','])
                    .map(|p| p.trim().parse::<i64>().ok().map(Value::from))
                    .collect();
                ids.map_or_else(|| Value::from(cell), Value::Array)
            }
            "externalMetadata" => serde_json::from_str(cell).unwrap_or_else(|_| Value::from(cell)),
            _ => Value::from(cell),
        };
        object.insert(name.clone(), value);
    }
    object
}

/// Counts the rows of the file (for the progress bar's length and ETA).
pub(super) fn count_rows(path: &Path, format: Format) -> anyhow::Result<u64> {
    if path == Path::new("-") {
        return Ok(0);
    }
    let mut rows = Rows::open(path, format)?;
    let mut n = 0;
    while rows.next()?.is_some() {
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_typed_and_empty_cells_are_absent() {
        let headers: Vec<String> = ["id", "doNotCall", "loanIds", "externalMetadata", "email"]
            .map(String::from)
            .to_vec();
        let record = csv::StringRecord::from(vec!["c1", "yes", "1;2", "{\"a\":1}", ""]);
        let row = csv_row(&headers, &record);
        assert_eq!(
            Value::Object(row),
            json!({"id": "c1", "doNotCall": true, "loanIds": [1, 2],
                   "externalMetadata": {"a": 1}})
        );
        let record = csv::StringRecord::from(vec!["c2", "maybe", "1;x", "{", "a@b.co"]);
        let row = Value::Object(csv_row(&headers, &record));
        assert_eq!(row["doNotCall"], "maybe", "left for validation to name");
        assert_eq!(row["loanIds"], "1;x");
        assert_eq!(row["externalMetadata"], "{");
    }
}
