//! Byte builders for binlog events, from the documented formats: used by the decoder tests (MySQL 8
//! events cannot be captured from a live server here) and by the `binlog_decode` benchmark.

/// A length-encoded integer.
pub fn lenenc(n: u64) -> Vec<u8> {
    match n {
        0..=250 => vec![n as u8],
        251..=0xFFFF => [vec![0xFC], (n as u16).to_le_bytes().to_vec()].concat(),
        0x1_0000..=0xFF_FFFF => [vec![0xFD], n.to_le_bytes()[..3].to_vec()].concat(),
        _ => [vec![0xFE], n.to_le_bytes().to_vec()].concat(),
    }
}

/// A TABLE_MAP body: `columns` are (type code, metadata bytes); `optional` are (TLV type, value).
pub fn table_map(
    table_id: u64,
    schema: &str,
    name: &str,
    columns: &[(u8, Vec<u8>)],
    optional: &[(u8, Vec<u8>)],
) -> Vec<u8> {
    let mut b = table_id.to_le_bytes()[..6].to_vec();
    b.extend([1, 0]);
    b.push(schema.len() as u8);
    b.extend(schema.as_bytes());
    b.push(0);
    b.push(name.len() as u8);
    b.extend(name.as_bytes());
    b.push(0);
    b.extend(lenenc(columns.len() as u64));
    b.extend(columns.iter().map(|(t, _)| *t));
    let meta: Vec<u8> = columns.iter().flat_map(|(_, m)| m.clone()).collect();
    b.extend(lenenc(meta.len() as u64));
    b.extend(meta);
    b.extend(vec![0xFF; columns.len().div_ceil(8)]);
    for (t, v) in optional {
        b.push(*t);
        b.extend(lenenc(v.len() as u64));
        b.extend(v);
    }
    b
}

/// The COLUMN_NAME optional metadata value.
pub fn column_names(names: &[&str]) -> Vec<u8> {
    names
        .iter()
        .flat_map(|n| [lenenc(n.len() as u64), n.as_bytes().to_vec()].concat())
        .collect()
}

/// A rows event body with every column present; `rows` are encoded images (NULL bitmap + values).
pub fn rows_event(
    table_id: u64,
    v2: bool,
    update: bool,
    ncols: usize,
    rows: &[Vec<u8>],
) -> Vec<u8> {
    let mut b = table_id.to_le_bytes()[..6].to_vec();
    b.extend([1, 0]);
    if v2 {
        b.extend(2u16.to_le_bytes());
    }
    b.extend(lenenc(ncols as u64));
    let bitmap = vec![0xFF; ncols.div_ceil(8)];
    b.extend(&bitmap);
    if update {
        b.extend(&bitmap);
    }
    for r in rows {
        b.extend(r);
    }
    b
}

/// A whole event: 19-byte v4 header and body, no checksum.
pub fn event(type_code: u8, server_id: u32, log_pos: u32, flags: u16, body: &[u8]) -> Vec<u8> {
    let mut b = 1_700_000_000u32.to_le_bytes().to_vec();
    b.push(type_code);
    b.extend(server_id.to_le_bytes());
    b.extend(((19 + body.len()) as u32).to_le_bytes());
    b.extend(log_pos.to_le_bytes());
    b.extend(flags.to_le_bytes());
    b.extend(body);
    b
}

/// A QUERY event body.
pub fn query(schema: &str, sql: &str) -> Vec<u8> {
    let mut b = vec![0u8; 8];
    b.push(schema.len() as u8);
    b.extend([0, 0]);
    b.extend(0u16.to_le_bytes());
    b.extend(schema.as_bytes());
    b.push(0);
    b.extend(sql.as_bytes());
    b
}

/// A MySQL 8 GTID event body with logical clock and an immediate commit timestamp.
pub fn mysql_gtid(sid: [u8; 16], gno: u64, commit_micros: u64) -> Vec<u8> {
    let mut b = vec![1u8];
    b.extend(sid);
    b.extend(gno.to_le_bytes());
    b.push(2);
    b.extend(0u64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    b.extend(&commit_micros.to_le_bytes()[..7]);
    b.extend(lenenc(100));
    b
}
