//! The read side of a job: the object's bytes are pumped from the async store
//! reader into a bounded channel, and a blocking thread decompresses and
//! parses them into mini-batches ([`Chunk`]) of at most `chunk_rows` rows.
//! Only a few blocks and chunks are in flight at once, so memory does not
//! grow with the file.

use std::io::{BufRead, BufReader, Read};

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use shared::features::{RowArrayError, RowLayout};
use shared::tensor::Values;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::error::JobError;
use crate::layout::{Format, InputFormat};

/// Size of the blocks read from the store.
const BLOCK_BYTES: usize = 256 * 1024;

/// Longest JSON Lines row that is read; a longer one is reported as a bad
/// row instead of being held in memory.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// A failure of the object store while the body was being read. It travels
/// through `std::io::Read` as an I/O error, and [`read_error`] recognises it
/// to keep it apart from a decoding error.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct StoreReadFailure(shared::Error);

/// Starts a task that reads the object and sends its bytes in blocks. The
/// task ends at the end of the object, at the first error, or when the
/// receiver is dropped.
pub fn pump(mut reader: shared::store::ObjectReader, location: String) -> mpsc::Receiver<Result<Bytes, shared::Error>> {
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let mut block = Vec::with_capacity(BLOCK_BYTES);
            let read = (&mut reader).take(BLOCK_BYTES as u64).read_to_end(&mut block).await;
            let message = match read {
                Ok(0) => return,
                Ok(_) => Ok(Bytes::from(block)),
                Err(err) => Err(shared::Error::storage("read", location.clone(), err)),
            };
            let failed = message.is_err();
            if sender.send(message).await.is_err() || failed {
                return;
            }
        }
    });
    receiver
}

/// The blocking end of [`pump`].
pub struct ChannelReader {
    receiver: mpsc::Receiver<Result<Bytes, shared::Error>>,
    current: Bytes,
}

impl ChannelReader {
    pub fn new(receiver: mpsc::Receiver<Result<Bytes, shared::Error>>) -> Self {
        ChannelReader { receiver, current: Bytes::new() }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(block)) => self.current = block,
                Some(Err(err)) => return Err(std::io::Error::other(StoreReadFailure(err))),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// Converts an I/O error met while parsing: a store failure is retried, and
/// anything else (bad gzip data) means the file is corrupt.
fn read_error(location: &str, err: std::io::Error) -> JobError {
    if !err.get_ref().is_some_and(|inner| inner.is::<StoreReadFailure>()) {
        return JobError::Corrupt { location: location.to_string(), reason: err.to_string() };
    }
    match err.into_inner().map(|inner| inner.downcast::<StoreReadFailure>()) {
        Some(Ok(failure)) => JobError::Storage(failure.0),
        _ => JobError::Internal { location: location.to_string(), reason: "a store read failure lost its cause".into() },
    }
}

/// One input row that could not be scored, as a line of the errors file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Line of the input where the row starts, counting from 1 (a CSV
    /// header is line 1).
    pub line: u64,
    /// The row's id, when the input has an `id` column or field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The feature at fault; `null` when the whole row is.
    pub column: Option<String>,
    pub reason: String,
}

/// Fields of a good row that are copied to the output beside its prediction.
#[derive(Debug, Clone)]
pub enum PassThrough {
    /// Every cell of a CSV row, in input order.
    Csv(csv::ByteRecord),
    /// The fields of a JSON Lines row other than its features.
    Json(Map<String, Value>),
}

/// A mini-batch of input rows: the feature values of the good rows, in row
/// order, and the rows that could not be read.
#[derive(Debug)]
pub struct Chunk {
    pub values: Values,
    pub rows: Vec<PassThrough>,
    /// Input line of each good row, for errors reported after inference.
    pub lines: Vec<u64>,
    pub ids: Vec<Option<String>>,
    pub errors: Vec<RowError>,
}

impl Chunk {
    /// Creates an empty chunk with room for `max_rows` rows.
    fn new(layout: &RowLayout<'_>, max_rows: usize, location: &str) -> Result<Self, JobError> {
        let values = layout
            .new_values(max_rows)
            .map_err(|err| JobError::Internal { location: location.to_string(), reason: err.to_string() })?;
        Ok(Chunk {
            values,
            rows: Vec::with_capacity(max_rows),
            lines: Vec::with_capacity(max_rows),
            ids: Vec::with_capacity(max_rows),
            errors: Vec::new(),
        })
    }

    /// Rows read into this chunk, good and bad.
    pub fn rows_read(&self) -> u64 {
        (self.rows.len() + self.errors.len()) as u64
    }
}

/// A parser that yields mini-batches.
pub trait RowSource: Send {
    /// Reads up to `max_rows` rows. Returns `None` at the end of the input.
    fn next_chunk(&mut self, layout: &RowLayout<'_>, max_rows: usize) -> Result<Option<Chunk>, JobError>;
}

/// Opens the parser for `format` over a byte stream. For CSV the header is
/// read and checked here, and returned for the output.
pub fn open(
    format: InputFormat,
    bytes: ChannelReader,
    layout: &RowLayout<'_>,
    location: &str,
) -> Result<(Box<dyn RowSource>, Option<csv::ByteRecord>), JobError> {
    let reader: Box<dyn Read + Send> = if format.gzip {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(BLOCK_BYTES, bytes)))
    } else {
        Box::new(bytes)
    };
    match format.format {
        Format::Csv => {
            let source = CsvSource::open(reader, layout, location)?;
            let header = source.header.clone();
            Ok((Box::new(source), Some(header)))
        }
        Format::Jsonl => Ok((Box::new(JsonlSource::new(reader, location)), None)),
    }
}

/// CSV with a header row. Cells are matched to features by column name, and
/// every cell passes through to the output.
///
/// NOTE: unlike a JSON Lines row, a CSV record has no size limit, so one
/// huge quoted field is held in memory whole.
pub struct CsvSource {
    reader: csv::Reader<Box<dyn Read + Send>>,
    header: csv::ByteRecord,
    /// Column of each feature, in feature order.
    columns: Vec<usize>,
    id_column: Option<usize>,
    location: String,
}

impl CsvSource {
    fn open(reader: Box<dyn Read + Send>, layout: &RowLayout<'_>, location: &str) -> Result<Self, JobError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).buffer_capacity(BLOCK_BYTES).from_reader(reader);
        let header = match reader.byte_headers() {
            Ok(header) => header.clone(),
            Err(err) => return Err(csv_error(location, err)),
        };
        if header.is_empty() || (header.len() == 1 && header[0].trim_ascii().is_empty()) {
            return Err(JobError::Empty { location: location.to_string() });
        }
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(index, name)| {
                // Spreadsheet programs start UTF-8 files with a byte order mark.
                let name = if index == 0 { name.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(name) } else { name };
                String::from_utf8_lossy(name).into_owned()
            })
            .collect();
        let columns = layout
            .feature_columns(names.iter().map(String::as_str))
            .map_err(|reason| JobError::Header { location: location.to_string(), reason })?;
        let id_column = names.iter().position(|name| name.eq_ignore_ascii_case("id"));
        Ok(CsvSource { reader, header, columns, id_column, location: location.to_string() })
    }
}

fn csv_error(location: &str, err: csv::Error) -> JobError {
    match err.into_kind() {
        csv::ErrorKind::Io(err) => read_error(location, err),
        other => JobError::Corrupt { location: location.to_string(), reason: format!("{other:?}") },
    }
}

impl RowSource for CsvSource {
    fn next_chunk(&mut self, layout: &RowLayout<'_>, max_rows: usize) -> Result<Option<Chunk>, JobError> {
        let mut chunk = Chunk::new(layout, max_rows, &self.location)?;
        let mut record = csv::ByteRecord::new();
        while chunk.rows_read() < max_rows as u64 {
            match self.reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => return Err(csv_error(&self.location, err)),
            }
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            let id = self.id_column.and_then(|i| record.get(i)).map(|id| String::from_utf8_lossy(id).into_owned());
            if record.len() != self.header.len() {
                chunk.errors.push(RowError {
                    line,
                    id,
                    column: None,
                    reason: format!("the row has {} fields but the header has {}", record.len(), self.header.len()),
                });
                continue;
            }
            let fields = self.columns.iter().map(|&i| &record[i]);
            match layout.push_text_fields(&mut chunk.values, fields) {
                Ok(()) => {
                    chunk.rows.push(PassThrough::Csv(record.clone()));
                    chunk.lines.push(line);
                    chunk.ids.push(id);
                }
                Err(err) => chunk.errors.push(RowError { line, id, column: Some(err.column), reason: err.reason }),
            }
        }
        Ok((chunk.rows_read() > 0).then_some(chunk))
    }
}

/// JSON Lines: one object per line, either of named features or
/// `{"inputs": [...]}` with the row's values in input order. Other fields pass
/// through to the output. Blank lines are skipped.
pub struct JsonlSource {
    reader: BufReader<Box<dyn Read + Send>>,
    line: u64,
    buffer: Vec<u8>,
    location: String,
}

impl JsonlSource {
    fn new(reader: Box<dyn Read + Send>, location: &str) -> Self {
        JsonlSource { reader: BufReader::with_capacity(BLOCK_BYTES, reader), line: 0, buffer: Vec::new(), location: location.to_string() }
    }

    /// Reads the next line into `self.buffer`. Returns `false` at the end of
    /// the input, and `Ok(true)` with an empty buffer for a line longer than
    /// [`MAX_LINE_BYTES`], whose bytes are skipped.
    fn read_line(&mut self) -> Result<(bool, bool), JobError> {
        self.buffer.clear();
        let read = (&mut self.reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut self.buffer)
            .map_err(|err| read_error(&self.location, err))?;
        if read == 0 {
            return Ok((false, false));
        }
        self.line += 1;
        if self.buffer.len() <= MAX_LINE_BYTES || self.buffer.ends_with(b"\n") {
            return Ok((true, false));
        }
        // Skip the rest of an overlong line without keeping it.
        loop {
            let available = self.reader.fill_buf().map_err(|err| read_error(&self.location, err))?;
            if available.is_empty() {
                break;
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.reader.consume(end + 1);
                    break;
                }
                None => {
                    let len = available.len();
                    self.reader.consume(len);
                }
            }
        }
        self.buffer.clear();
        Ok((true, true))
    }
}

impl RowSource for JsonlSource {
    fn next_chunk(&mut self, layout: &RowLayout<'_>, max_rows: usize) -> Result<Option<Chunk>, JobError> {
        let mut chunk = Chunk::new(layout, max_rows, &self.location)?;
        while chunk.rows_read() < max_rows as u64 {
            let (more, too_long) = self.read_line()?;
            if !more {
                break;
            }
            let line = self.line;
            if too_long {
                let reason = format!("the line is longer than {MAX_LINE_BYTES} bytes");
                chunk.errors.push(RowError { line, id: None, column: None, reason });
                continue;
            }
            if self.buffer.trim_ascii().is_empty() {
                continue;
            }
            match parse_json_row(layout, &mut chunk.values, &self.buffer) {
                Ok((fields, id)) => {
                    chunk.rows.push(PassThrough::Json(fields));
                    chunk.lines.push(line);
                    chunk.ids.push(id);
                }
                Err((id, column, reason)) => chunk.errors.push(RowError { line, id, column, reason }),
            }
        }
        Ok((chunk.rows_read() > 0).then_some(chunk))
    }
}

type JsonRowError = (Option<String>, Option<String>, String);

/// Appends one JSON Lines row to `values`. Returns the fields that pass
/// through and the row's id, or the id, column and reason of the failure.
fn parse_json_row(layout: &RowLayout<'_>, values: &mut Values, line: &[u8]) -> Result<(Map<String, Value>, Option<String>), JsonRowError> {
    let mut object = match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(object)) => object,
        Ok(other) => return Err((None, None, format!("the line is {}, not a JSON object", kind_of(&other)))),
        Err(err) => return Err((None, None, format!("invalid JSON: {err}"))),
    };
    let id = object.get("id").map(|id| match id {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    });
    match object.remove("inputs") {
        Some(inputs) => {
            let reason = match layout.push_json_array(values, &inputs) {
                Ok(()) => None,
                Err(RowArrayError::Invalid(reason)) => Some(reason),
                Err(RowArrayError::Count(pushed)) => Some(layout.count_error("`inputs`", pushed).to_string()),
            };
            if let Some(reason) = reason {
                return Err((id, Some("inputs".into()), reason));
            }
        }
        None => {
            layout.push_object_features(values, &object).map_err(|err| (id.clone(), Some(err.column), err.reason))?;
            if let Some(features) = layout.features {
                for feature in features {
                    object.remove(&feature.name);
                }
            }
        }
    }
    Ok((object, id))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::manifest::Manifest;

    fn manifest() -> Manifest {
        serde_json::from_value(serde_json::json!({
            "schema_version": 1, "name": "m", "version": 1, "created_at": "2026-01-01T00:00:00Z",
            "sha256": "0000000000000000000000000000000000000000000000000000000000000000", "size_bytes": 3,
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 1]}],
            "features": [{"name": "a"}, {"name": "b"}]
        }))
        .unwrap()
    }

    /// Returns a reader over `blocks`, as the pump delivers them.
    fn reader(blocks: Vec<Result<Bytes, shared::Error>>) -> ChannelReader {
        let (sender, receiver) = mpsc::channel(blocks.len().max(1));
        for block in blocks {
            sender.try_send(block).unwrap();
        }
        ChannelReader::new(receiver)
    }

    fn csv(text: &str) -> ChannelReader {
        reader(vec![Ok(Bytes::from(text.to_string()))])
    }

    const CSV: InputFormat = InputFormat { format: Format::Csv, gzip: false };

    #[test]
    fn csv_rows_split_into_chunks_with_line_numbers() {
        let manifest = manifest();
        let layout = RowLayout::new(&manifest, &manifest.inputs).unwrap();
        let (mut source, header) = open(CSV, csv("\u{feff}ID,b,a\nr1,2,1\nr2,x,3\n\"r,3\",4,5\n"), &layout, "t.csv").unwrap();
        assert_eq!(header.unwrap().len(), 3);

        let first = source.next_chunk(&layout, 2).unwrap().unwrap();
        assert_eq!(first.values, Values::F32(vec![1.0, 2.0]));
        assert_eq!(first.lines, vec![2]);
        assert_eq!(first.errors, vec![RowError { line: 3, id: Some("r2".into()), column: Some("b".into()), reason: "`x` is not a number".into() }]);
        let second = source.next_chunk(&layout, 2).unwrap().unwrap();
        assert_eq!(second.values, Values::F32(vec![5.0, 4.0]));
        assert_eq!(second.ids, vec![Some("r,3".to_string())]);
        assert!(source.next_chunk(&layout, 2).unwrap().is_none());
    }

    #[test]
    fn read_errors_are_classified() {
        let manifest = manifest();
        let layout = RowLayout::new(&manifest, &manifest.inputs).unwrap();
        let failing = reader(vec![
            Ok(Bytes::from_static(b"a,b\n1,2\n")),
            Err(shared::Error::storage("read", "s3://b/k", "connection reset")),
        ]);
        let (mut source, _) = open(CSV, failing, &layout, "k").unwrap();
        let err = source.next_chunk(&layout, 10).unwrap_err();
        assert!(err.is_retryable(), "{err}");

        let not_gzip = InputFormat { format: Format::Csv, gzip: true };
        let err = open(not_gzip, csv("a,b\n1,2\n"), &layout, "k.csv.gz").err().unwrap();
        assert!(matches!(err, JobError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn overlong_jsonl_line_is_a_bad_row() {
        let manifest = manifest();
        let layout = RowLayout::new(&manifest, &manifest.inputs).unwrap();
        let long = format!("{{\"pad\": \"{}\"}}\n{{\"a\": 1, \"b\": 2}}\n", "x".repeat(MAX_LINE_BYTES + 10));
        let jsonl = InputFormat { format: Format::Jsonl, gzip: false };
        let (mut source, header) = open(jsonl, csv(&long), &layout, "k.jsonl").unwrap();
        assert!(header.is_none());
        let chunk = source.next_chunk(&layout, 10).unwrap().unwrap();
        assert_eq!(chunk.errors.len(), 1);
        assert_eq!(chunk.errors[0].line, 1);
        assert!(chunk.errors[0].reason.contains("longer than"), "{:?}", chunk.errors[0]);
        assert_eq!(chunk.lines, vec![2]);
        assert_eq!(chunk.values, Values::F32(vec![1.0, 2.0]));
    }

    #[test]
    fn ragged_jsonl_inputs_are_bad_rows() {
        let manifest = manifest();
        let layout = RowLayout::new(&manifest, &manifest.inputs).unwrap();
        let lines = "{\"inputs\": [[1], [2]]}\n{\"inputs\": [1, 2, 3]}\n{\"inputs\": [[3, 4]]}\n{\"inputs\": [5, 6]}\n";
        let jsonl = InputFormat { format: Format::Jsonl, gzip: false };
        let (mut source, _) = open(jsonl, csv(lines), &layout, "k.jsonl").unwrap();
        let chunk = source.next_chunk(&layout, 10).unwrap().unwrap();
        assert_eq!(chunk.errors.len(), 3, "{:?}", chunk.errors);
        assert!(chunk.errors[0].reason.contains("element [0] is an array where a number is expected"), "{:?}", chunk.errors[0]);
        assert!(chunk.errors[1].reason.contains("`inputs` has 3 values but input `x` takes 2 per row"), "{:?}", chunk.errors[1]);
        assert!(chunk.errors[2].reason.contains("array at the top has 1 elements"), "{:?}", chunk.errors[2]);
        assert_eq!(chunk.lines, vec![4]);
        assert_eq!(chunk.values, Values::F32(vec![5.0, 6.0]));
    }
}
