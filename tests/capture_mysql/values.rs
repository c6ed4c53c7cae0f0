//! Every column type's values, decoded exactly, and kept in their columns across an ALTER TABLE.

use super::*;

fn dec(s: &str) -> Value {
    Value::Decimal(s.parse().expect("test decimal"))
}

fn days(y: i64, m: u32, d: u32) -> i64 {
    tandem::model::time::days_from_civil(y, m, d)
}

fn ts(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64, micros: i64) -> i64 {
    days(y, mo, d) * 86_400_000_000 + ((h * 60 + mi) * 60 + s) * 1_000_000 + micros
}

fn time_us(neg: bool, h: i64, m: i64, s: i64, micros: i64) -> Value {
    let v = ((h * 60 + m) * 60 + s) * 1_000_000 + micros;
    Value::Time(if neg { -v } else { v })
}

const ALL_TYPES: &str = "CREATE TABLE types (
    id INT PRIMARY KEY,
    ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
    mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
    d1 DECIMAL(65,30), d2 DECIMAL(10,2), d3 DECIMAL(5,0),
    f FLOAT, db DOUBLE,
    dt DATE, dtt DATETIME, dt6 DATETIME(6), dt3 DATETIME(3),
    ts6 TIMESTAMP(6) NULL, ts0 TIMESTAMP NULL,
    tm TIME, tm6 TIME(6), tm2 TIME(2),
    y YEAR,
    c CHAR(10), vc VARCHAR(300), tx TEXT, l1 VARCHAR(20) CHARACTER SET latin1,
    bn BINARY(4), vb VARBINARY(10), bl BLOB,
    e ENUM('a','b','c'), st SET('x','y','z'),
    bt BIT(10), b1 BIT(1),
    j JSON,
    zd DATE, zdt DATETIME
)";

#[tokio::test]
async fn mysql_every_type_round_trips_exactly() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, ALL_TYPES).await;
    let mut src = MysqlSource::connect(options(&maria, &db, &["types"], None))
        .await
        .expect("source connects");
    exec(&mut conn, "SET SESSION sql_mode = '', time_zone = '+00:00'").await;
    let long = format!("héllo 😀{}", "x".repeat(250));
    let d1_min = format!("-{}.{}", "9".repeat(35), "9".repeat(30));
    exec(
        &mut conn,
        &format!(
            "INSERT INTO types VALUES (1,
            -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
            -9223372036854775808, 18446744073709551615,
            {d1_min}, -12345678.90, 99999,
            1.5, 0.1,
            '2024-02-29', '9999-12-31 23:59:59', '2024-02-29 12:34:56.123456', '1000-01-01 00:00:00.5',
            '2038-01-19 03:14:07.999999', '1970-01-01 00:00:01',
            '-838:59:59', '-12:34:56.789012', '100:00:00.5',
            2155,
            'abc', '{long}', 'emoji 😀🎉', 'café €',
            X'0102', X'00FF', UNHEX(REPEAT('00FF7F80', 4)),
            'b', 'x,z',
            b'1010000011', b'1',
            '{{\"a\": [1, 2.5, \"x\"], \"b\": null}}',
            '0000-00-00', '0000-00-00 00:00:00')"
        ),
    )
    .await;
    exec(
        &mut conn,
        "INSERT INTO types (id, ti, tu, bi, bu, d1, d2, d3, f, db, tm, tm6, y, e, st, bt, b1, c, bn)
         VALUES (2, 127, 0, 9223372036854775807, 0, 0.000000000000000000000000000001, 0.05, -1,
                 -1.25, -2.5e300, '00:00:00', '-00:00:00.000001', 1901, '', '', b'0', b'0', '', '')",
    )
    .await;
    exec(&mut conn, "INSERT INTO types (id) VALUES (3)").await;

    let r1 = changes(&next_txn(&mut src).await).remove(0);
    assert_row(
        &r1,
        &[
            ("ti", Value::Int(-128)),
            ("tu", Value::UInt(255)),
            ("si", Value::Int(-32768)),
            ("su", Value::UInt(65535)),
            ("mi", Value::Int(-8388608)),
            ("mu", Value::UInt(16777215)),
            ("i", Value::Int(-2147483648)),
            ("iu", Value::UInt(4294967295)),
            ("bi", Value::Int(i64::MIN)),
            ("bu", Value::UInt(u64::MAX)),
            ("d1", dec(&d1_min)),
            ("d2", dec("-12345678.90")),
            ("d3", dec("99999")),
            ("f", Value::Float32(1.5)),
            ("db", Value::Float64(0.1)),
            ("dt", Value::Date(days(2024, 2, 29) as i32)),
            ("dtt", Value::Timestamp(ts(9999, 12, 31, 23, 59, 59, 0))),
            (
                "dt6",
                Value::Timestamp(ts(2024, 2, 29, 12, 34, 56, 123_456)),
            ),
            ("dt3", Value::Timestamp(ts(1000, 1, 1, 0, 0, 0, 500_000))),
            ("ts6", Value::TimestampTz(2_147_483_647_999_999)),
            ("ts0", Value::TimestampTz(1_000_000)),
            ("tm", time_us(true, 838, 59, 59, 0)),
            ("tm6", time_us(true, 12, 34, 56, 789_012)),
            ("tm2", time_us(false, 100, 0, 0, 500_000)),
            ("y", Value::Int(2155)),
            ("c", Value::Text("abc".into())),
            ("vc", Value::Text(long.clone())),
            ("tx", Value::Text("emoji 😀🎉".into())),
            ("l1", Value::Text("café €".into())),
            ("bn", Value::Bytes(vec![1, 2, 0, 0])),
            ("vb", Value::Bytes(vec![0, 0xFF])),
            ("bl", Value::Bytes([0u8, 0xFF, 0x7F, 0x80].repeat(4))),
            ("e", Value::Enum("b".into())),
            ("st", Value::Set(vec!["x".into(), "z".into()])),
            (
                "bt",
                Value::Bits {
                    len: 10,
                    bytes: vec![0b1010_0000, 0b1100_0000],
                },
            ),
            (
                "b1",
                Value::Bits {
                    len: 1,
                    bytes: vec![0b1000_0000],
                },
            ),
            (
                "j",
                Value::Json(r#"{"a": [1, 2.5, "x"], "b": null}"#.into()),
            ),
            (
                "zd",
                Value::Other {
                    type_name: "zero_date".into(),
                    text: "0000-00-00".into(),
                },
            ),
            (
                "zdt",
                Value::Other {
                    type_name: "zero_date".into(),
                    text: "0000-00-00 00:00:00".into(),
                },
            ),
        ],
    );
    let r2 = changes(&next_txn(&mut src).await).remove(0);
    assert_row(
        &r2,
        &[
            ("ti", Value::Int(127)),
            ("tu", Value::UInt(0)),
            ("bi", Value::Int(i64::MAX)),
            ("bu", Value::UInt(0)),
            ("d1", dec("0.000000000000000000000000000001")),
            ("d2", dec("0.05")),
            ("d3", dec("-1")),
            ("f", Value::Float32(-1.25)),
            ("db", Value::Float64(-2.5e300)),
            ("tm", Value::Time(0)),
            ("tm6", Value::Time(-1)),
            ("y", Value::Int(1901)),
            ("e", Value::Enum("".into())),
            ("st", Value::Set(vec![])),
            (
                "bt",
                Value::Bits {
                    len: 10,
                    bytes: vec![0, 0],
                },
            ),
            ("c", Value::Text("".into())),
            ("bn", Value::Bytes(vec![0, 0, 0, 0])),
        ],
    );
    let r3 = changes(&next_txn(&mut src).await).remove(0);
    let after = r3.after.as_ref().expect("insert has an after image");
    assert_eq!(after.fields.len(), 40, "every column present");
    for f in after.fields.iter().filter(|f| &*f.name != "id") {
        assert_eq!(
            f.value,
            Value::Null,
            "column {} of the all-NULL row",
            f.name
        );
    }
}

#[tokio::test]
async fn mysql_alter_table_mid_stream_keeps_values_in_their_columns() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(
        &mut conn,
        "CREATE TABLE d (id INT PRIMARY KEY, a VARCHAR(10))",
    )
    .await;
    let mut src = MysqlSource::connect(options(&maria, &db, &["d"], None))
        .await
        .expect("source connects");
    exec(&mut conn, "INSERT INTO d VALUES (1, 'a1')").await;
    exec(&mut conn, "ALTER TABLE d ADD COLUMN b INT AFTER id").await;
    exec(&mut conn, "INSERT INTO d VALUES (2, 22, 'a2')").await;
    exec(&mut conn, "ALTER TABLE d DROP COLUMN a").await;
    exec(&mut conn, "INSERT INTO d VALUES (3, 33)").await;
    exec(&mut conn, "UPDATE d SET b = 34 WHERE id = 3").await;

    let names = |c: &Change| -> Vec<String> {
        c.after
            .as_ref()
            .expect("after image")
            .fields
            .iter()
            .map(|f| f.name.to_string())
            .collect()
    };
    let c1 = changes(&next_txn(&mut src).await).remove(0);
    assert_eq!(names(&c1), ["id", "a"]);
    assert_row(&c1, &[("a", Value::Text("a1".into()))]);
    let c2 = changes(&next_txn(&mut src).await).remove(0);
    assert_eq!(names(&c2), ["id", "b", "a"]);
    assert_row(
        &c2,
        &[("b", Value::Int(22)), ("a", Value::Text("a2".into()))],
    );
    let c3 = changes(&next_txn(&mut src).await).remove(0);
    assert_eq!(names(&c3), ["id", "b"]);
    assert_row(&c3, &[("b", Value::Int(33))]);
    let c4 = changes(&next_txn(&mut src).await).remove(0);
    assert_eq!(
        c4.before.as_ref().and_then(|b| b.get("b")),
        Some(&Value::Int(33))
    );
    assert_row(&c4, &[("b", Value::Int(34))]);
}
