//! PostgreSQL array literals (the text output of any array type), parsed into a tree of element texts
//! that `types.rs` then decodes by element type.

/// Nesting deeper than this is refused (PostgreSQL allows at most 6 dimensions).
const MAX_DEPTH: usize = 16;

/// One element of a parsed array literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArrayItem {
    Null,
    Text(String),
    Nested(Vec<ArrayItem>),
}

/// Parses a PostgreSQL array literal (`{1,2}`, `{{"a b",NULL},{"\"q\"",c}}`, `[0:1]={1,2}`).
///
/// From the manual's "Array Input and Output Syntax": "The array output routine will put double quotes
/// around element values if they are empty strings, contain curly braces, delimiter characters, double
/// quotes, backslashes, or white space, or match the word NULL. Double quotes and backslashes embedded
/// in element values will be backslash-escaped." An unquoted `NULL` is a null element; a quoted one is
/// the text `NULL`. Non-default lower bounds are printed as a `[lo:hi]=` prefix, dropped here.
pub fn parse_array(s: &str, delim: u8) -> Option<ArrayItem> {
    let s = match s.strip_prefix('[') {
        Some(_) => &s[s.find('=')? + 1..],
        None => s,
    };
    let bytes = s.as_bytes();
    let mut pos = 0;
    let item = parse_array_level(bytes, &mut pos, delim, 0)?;
    (pos == bytes.len()).then_some(item)
}

fn parse_array_level(b: &[u8], pos: &mut usize, delim: u8, depth: usize) -> Option<ArrayItem> {
    if depth > MAX_DEPTH || b.get(*pos) != Some(&b'{') {
        return None;
    }
    *pos += 1;
    let mut items = Vec::new();
    if b.get(*pos) == Some(&b'}') {
        *pos += 1;
        return Some(ArrayItem::Nested(items));
    }
    loop {
        let item = match b.get(*pos)? {
            b'{' => parse_array_level(b, pos, delim, depth + 1)?,
            b'"' => {
                *pos += 1;
                let mut out = Vec::new();
                loop {
                    match *b.get(*pos)? {
                        b'"' => break,
                        b'\\' => {
                            *pos += 1;
                            out.push(*b.get(*pos)?);
                        }
                        c => out.push(c),
                    }
                    *pos += 1;
                }
                *pos += 1;
                ArrayItem::Text(String::from_utf8(out).ok()?)
            }
            _ => {
                let start = *pos;
                while !matches!(b.get(*pos), Some(&c) if c == delim || c == b'}') {
                    if *pos >= b.len() {
                        return None;
                    }
                    *pos += 1;
                }
                let raw = std::str::from_utf8(&b[start..*pos]).ok()?;
                if raw == "NULL" {
                    ArrayItem::Null
                } else if raw.is_empty() {
                    return None;
                } else {
                    ArrayItem::Text(raw.to_owned())
                }
            }
        };
        items.push(item);
        match *b.get(*pos)? {
            c if c == delim => *pos += 1,
            b'}' => {
                *pos += 1;
                return Some(ArrayItem::Nested(items));
            }
            _ => return None,
        }
    }
}
