//! Type fidelity across engines: PostgreSQL -> MariaDB and MariaDB -> PostgreSQL, every value
//! against a table of expected mapped values (see `support::cross`), through copy and stream.

use crate::support::cross::{cross_pair, CrossCase, Expect, Source};

/// PostgreSQL built-in types into their MariaDB counterparts, against the table of expected mapped
/// values: integer and decimal extremes, floats, booleans, text and bytes, temporal types at the
/// edges MariaDB holds, UUID, JSON, enums and bit strings; values MariaDB has no form for
/// (infinity, years past 9999, NaN) are refused with a dead letter naming the column.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_types_to_mariadb_as_mapped() {
    cross_pair(
        Source::Postgres,
        &[
            CrossCase {
                table: "nums",
                pg_ddl: "CREATE TABLE nums (id int PRIMARY KEY, i2 smallint, i4 integer, \
                         i8 bigint, n numeric(12,4), n30 numeric(65,30), r real, d double precision, \
                         b boolean)",
                maria_ddl: "CREATE TABLE nums (id INT PRIMARY KEY, i2 SMALLINT, i4 INT, \
                            i8 BIGINT, n DECIMAL(12,4), n30 DECIMAL(65,30), r FLOAT, d DOUBLE, \
                            b BOOLEAN)",
                columns: "id, i2, i4, i8, n, n30, r, d, b",
                rows: &[
                    "1, -32768, -2147483648, -9223372036854775808, -99999999.9999, \
                     '-99999999999999999999999999999999999.999999999999999999999999999999', \
                     -3.40282e38, -1.7976931348623157e308, false",
                    "2, 32767, 2147483647, 9223372036854775807, 99999999.9999, \
                     0.000000000000000000000000000001, 1.17549e-38, 2.2250738585072014e-308, true",
                    "3, 0, 0, 0, 0, 0, '-0', 0.1, NULL",
                    "4, NULL, NULL, NULL, 'NaN', NULL, NULL, NULL, NULL",
                    "5, NULL, NULL, NULL, NULL, NULL, 'Infinity', NULL, NULL",
                    "6, NULL, NULL, NULL, NULL, NULL, NULL, 'NaN', NULL",
                ],
                expect: &[
                    Expect::Row(
                        "1|-32768|-2147483648|-9223372036854775808|-99999999.9999|\
                         -99999999999999999999999999999999999.999999999999999999999999999999|\
                         -3.40282e38|-1.7976931348623157e308|0",
                    ),
                    Expect::Row(
                        "2|32767|2147483647|9223372036854775807|99999999.9999|\
                         0.000000000000000000000000000001|1.17549e-38|2.2250738585072014e-308|1",
                    ),
                    // MariaDB stores a float's -0 as 0 (as it does for its own clients).
                    Expect::Row("3|0|0|0|0.0000|0.000000000000000000000000000000|0|0.1|NULL"),
                    Expect::Refused(Some("n")),
                    Expect::Refused(Some("r")),
                    Expect::Refused(Some("d")),
                ],
            },
            CrossCase {
                table: "texts",
                pg_ddl: "CREATE TABLE texts (id int PRIMARY KEY, t text, v varchar(5), \
                         c char(3), bt bytea, u uuid, j json, jb jsonb, bits bit(8), vb varbit(8), \
                         m3 text)",
                maria_ddl: "CREATE TABLE texts (id INT PRIMARY KEY, \
                            t LONGTEXT CHARACTER SET utf8mb4, v VARCHAR(5) CHARACTER SET utf8mb4, \
                            c CHAR(3), bt LONGBLOB, u UUID, j JSON, jb JSON, bits BIT(8), \
                            vb BIT(8), m3 VARCHAR(3) CHARACTER SET utf8mb3)",
                columns: "id, t, v, c, HEX(bt), u, j, jb, bits + 0, vb + 0, m3",
                rows: &[
                    "1, 'äöü€😀 \"q\" \\\\ x', 'ü😀xyz', 'abc', '\\x00ff00', \
                     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2.50]}', \
                     '{\"b\": {\"c\": null}}', B'10000001', B'101', 'ĳ€ü'",
                    "2, '', '', '', '\\x', '00000000-0000-0000-0000-000000000000', '[]', '{}', \
                     B'00000000', B'', ''",
                    "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
                    "4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'a😀'",
                    "5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'abcd'",
                ],
                expect: &[
                    Expect::Row(
                        "1|äöü€😀 \"q\" \\\\ x|ü😀xyz|abc|00FF00|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|\
                         {\"a\": [1, 2.50]}|{\"b\": {\"c\": null}}|129|5|ĳ€ü",
                    ),
                    Expect::Row("2|||||00000000-0000-0000-0000-000000000000|[]|{}|0|0|"),
                    Expect::Row("3|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"),
                    // 4-byte UTF-8 into utf8mb3, and a text longer than the column: refused, not
                    // replaced by '?' or cut.
                    Expect::Refused(Some("m3")),
                    Expect::Refused(Some("m3")),
                ],
            },
            CrossCase {
                table: "times",
                pg_ddl: "CREATE TABLE times (id int PRIMARY KEY, d date, ts timestamp(6), \
                         tz timestamptz(6), t time(6))",
                maria_ddl: "CREATE TABLE times (id INT PRIMARY KEY, d DATE, ts DATETIME(6), \
                            tz TIMESTAMP(6) NULL, t TIME(6))",
                columns: "id, d, ts, tz, t",
                rows: &[
                    "1, '1000-01-01', '1000-01-01 00:00:00', '1970-01-01 00:00:01+00', '00:00:00'",
                    "2, '9999-12-31', '9999-12-31 23:59:59.999999', \
                     '2038-01-19 03:14:07.999999+00', '23:59:59.999999'",
                    "3, '2024-02-29', '2024-02-29 12:34:56.5', '2024-02-29 12:34:56.5+02', \
                     '24:00:00'",
                    "4, 'infinity', NULL, NULL, NULL",
                    "5, NULL, '-infinity', NULL, NULL",
                    "6, '21016-11-04', NULL, NULL, NULL",
                    "7, NULL, '0044-03-15 12:00:00 BC', NULL, NULL",
                ],
                expect: &[
                    Expect::Row(
                        "1|1000-01-01|1000-01-01 00:00:00.000000|1970-01-01 00:00:01.000000|\
                         00:00:00.000000",
                    ),
                    Expect::Row(
                        "2|9999-12-31|9999-12-31 23:59:59.999999|2038-01-19 03:14:07.999999|\
                         23:59:59.999999",
                    ),
                    Expect::Row(
                        "3|2024-02-29|2024-02-29 12:34:56.500000|2024-02-29 10:34:56.500000|\
                         24:00:00.000000",
                    ),
                    Expect::Refused(Some("d")),
                    Expect::Refused(Some("ts")),
                    Expect::Refused(Some("d")),
                    Expect::Refused(Some("ts")),
                ],
            },
        ],
    )
    .await;
}

/// MariaDB built-in types into their PostgreSQL counterparts, against the table of expected mapped
/// values: signed and unsigned integer extremes, DECIMAL(65,30), floats, TINYINT(1) as boolean, text
/// in several character sets, every blob size, temporal types at their edges, YEAR, ENUM, SET, JSON,
/// BIT, UUID and INET6; values PostgreSQL has no form for (zero dates, a NUL character in text, a
/// TIME beyond a day) are refused with a dead letter naming the column.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_types_to_postgres_as_mapped() {
    cross_pair(
        Source::MariaDb,
        &[
            CrossCase {
                table: "nums",
                pg_ddl: "CREATE TABLE nums (id int PRIMARY KEY, ti smallint, tu smallint, \
                         mi integer, mu integer, iu bigint, bu numeric(20), bi bigint, \
                         de numeric(65,30), fl real, db double precision, b boolean, y smallint)",
                maria_ddl: "CREATE TABLE nums (id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, \
                            mi MEDIUMINT, mu MEDIUMINT UNSIGNED, iu INT UNSIGNED, \
                            bu BIGINT UNSIGNED, bi BIGINT, de DECIMAL(65,30), fl FLOAT, db DOUBLE, \
                            b TINYINT(1), y YEAR)",
                columns: "id, ti, tu, mi, mu, iu, bu, bi, de, fl, db, b, y",
                rows: &[
                    "1, -128, 0, -8388608, 0, 0, 0, -9223372036854775808, \
                     '-99999999999999999999999999999999999.999999999999999999999999999999', \
                     -3.40282e38, -1.7976931348623157e308, 0, 1901",
                    "2, 127, 255, 8388607, 16777215, 4294967295, 18446744073709551615, \
                     9223372036854775807, 0.000000000000000000000000000001, 1.17549e-38, \
                     2.2250738585072014e-308, 1, 2155",
                    "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0",
                ],
                expect: &[
                    Expect::Row(
                        "1|-128|0|-8388608|0|0|0|-9223372036854775808|\
                         -99999999999999999999999999999999999.999999999999999999999999999999|\
                         -3.40282e+38|-1.7976931348623157e+308|f|1901",
                    ),
                    Expect::Row(
                        "2|127|255|8388607|16777215|4294967295|18446744073709551615|\
                         9223372036854775807|0.000000000000000000000000000001|1.17549e-38|\
                         2.2250738585072014e-308|t|2155",
                    ),
                    Expect::Row("3|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|0"),
                ],
            },
            CrossCase {
                table: "texts",
                pg_ddl: "CREATE TABLE texts (id int PRIMARY KEY, u8 text, l1 text, c char(5), \
                         vc varchar(10), tt text, mt text, tb bytea, bl bytea, mb bytea, lb bytea, \
                         bn bytea, vb bytea)",
                maria_ddl: "CREATE TABLE texts (id INT PRIMARY KEY, \
                            u8 LONGTEXT CHARACTER SET utf8mb4, l1 VARCHAR(20) CHARACTER SET latin1, \
                            c CHAR(5), vc VARCHAR(10) CHARACTER SET utf8mb3, tt TINYTEXT, \
                            mt MEDIUMTEXT, tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB, \
                            bn BINARY(3), vb VARBINARY(5))",
                columns: "id, u8, l1, c, vc, tt, mt, encode(tb, 'hex'), encode(bl, 'hex'), \
                          encode(mb, 'hex'), encode(lb, 'hex'), encode(bn, 'hex'), encode(vb, 'hex')",
                rows: &[
                    "1, 'äöü€😀 \"q\" \\\\ x', 'café', 'ab', 'ĳ€', 'tiny', 'medium', x'00ff', \
                     x'0001', x'ff', x'00', x'0102', x'00ff00'",
                    "2, '', '', '', '', '', '', x'', x'', x'', x'', x'', x''",
                    "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
                ],
                expect: &[
                    Expect::Row(
                        "1|äöü€😀 \"q\" \\ x|café|ab   |ĳ€|tiny|medium|00ff|0001|ff|00|010200|00ff00",
                    ),
                    Expect::Row("2|||     ||||||||000000|"),
                    Expect::Row("3|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"),
                ],
            },
            CrossCase {
                table: "times",
                pg_ddl: "CREATE TABLE times (id int PRIMARY KEY, d date, dt timestamp(6), \
                         dt0 timestamp(0), ts timestamptz(6), t time(6))",
                maria_ddl: "CREATE TABLE times (id INT PRIMARY KEY, d DATE, dt DATETIME(6), \
                            dt0 DATETIME, ts TIMESTAMP(6) NULL, t TIME(6))",
                columns: "id, d, dt, dt0, ts, t",
                rows: &[
                    "1, '1000-01-01', '1000-01-01 00:00:00.000000', '1000-01-01 00:00:00', \
                     '1970-01-01 00:00:01.000000', '00:00:00'",
                    "2, '9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59', \
                     '2038-01-19 03:14:07.999999', '23:59:59.999999'",
                    "3, '0000-00-00', NULL, NULL, NULL, NULL",
                    "4, NULL, '2015-05-00 12:00:00', NULL, NULL, NULL",
                    "5, NULL, NULL, NULL, NULL, '-00:00:01'",
                    "6, NULL, NULL, NULL, NULL, '838:59:59'",
                ],
                expect: &[
                    Expect::Row(
                        "1|1000-01-01|1000-01-01 00:00:00|1000-01-01 00:00:00|\
                         1970-01-01 00:00:01+00|00:00:00",
                    ),
                    Expect::Row(
                        "2|9999-12-31|9999-12-31 23:59:59.999999|9999-12-31 23:59:59|\
                         2038-01-19 03:14:07.999999+00|23:59:59.999999",
                    ),
                    Expect::Refused(Some("d")),
                    Expect::Refused(Some("dt")),
                    Expect::Refused(Some("t")),
                    Expect::Refused(Some("t")),
                ],
            },
            CrossCase {
                table: "others",
                pg_ddl: "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); \
                         CREATE TABLE others (id int PRIMARY KEY, e mood, et text, st text, \
                         j jsonb, b8 bit(8), b1 bit(1), u uuid, ip inet)",
                maria_ddl: "CREATE TABLE others (id INT PRIMARY KEY, e ENUM('sad','ok','happy'), \
                            et ENUM('x','y'), st SET('a','b','c'), j JSON, b8 BIT(8), b1 BIT(1), \
                            u UUID, ip INET6)",
                columns: "id, e, et, st, j, b8, b1, u, ip",
                rows: &[
                    "1, 'happy', 'y', 'a,c', '{\"k\": [1, \"\\\\u00e9\", null]}', b'10000001', b'1', \
                     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2001:db8::1'",
                    "2, 'sad', 'x', '', '[]', b'0', b'0', \
                     '00000000-0000-0000-0000-000000000000', '::ffff:1.2.3.4'",
                    "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
                ],
                expect: &[
                    Expect::Row(
                        "1|happy|y|a,c|{\"k\": [1, \"é\", null]}|10000001|1|\
                         a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|2001:db8::1",
                    ),
                    Expect::Row(
                        "2|sad|x||[]|00000000|0|00000000-0000-0000-0000-000000000000|::ffff:1.2.3.4",
                    ),
                    Expect::Row("3|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"),
                ],
            },
        ],
    )
    .await;
}

/// A MariaDB text holding the NUL character, which PostgreSQL text cannot store, is refused with a
/// dead letter naming the column, and the link goes on. Before bookkeeping version 8 the dead letter
/// could not be written either (its payload column was `jsonb`, which refuses the `\u0000` escape,
/// SQLSTATE 22P05), so the link halted.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_text_with_nul_to_postgres_is_dead_lettered() {
    cross_pair(
        Source::MariaDb,
        &[CrossCase {
            table: "texts",
            pg_ddl: "CREATE TABLE texts (id int PRIMARY KEY, t text)",
            maria_ddl: "CREATE TABLE texts (id INT PRIMARY KEY, t TEXT)",
            columns: "id, t",
            rows: &["1, 'a\\0b'", "2, 'after'"],
            expect: &[Expect::Refused(Some("t")), Expect::Row("2|after")],
        }],
    )
    .await;
}

/// The conventional cross-engine pairs (check warns about each): PostgreSQL enums, arrays, network
/// addresses and UUIDs in MariaDB's ENUM, JSON, INET6/VARCHAR and BINARY(16); a date in a DATETIME.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_conventional_pairs_to_mariadb() {
    cross_pair(
        Source::Postgres,
        &[CrossCase {
            table: "conv",
            pg_ddl: "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); \
                     CREATE TABLE conv (id int PRIMARY KEY, e mood, et mood, ia int[], \
                     ta text[], ip inet, ipt inet, u uuid, d date, b boolean, s text)",
            maria_ddl: "CREATE TABLE conv (id INT PRIMARY KEY, e ENUM('sad','ok','happy'), \
                        et VARCHAR(10), ia JSON, ta JSON, ip INET6, ipt VARCHAR(50), \
                        u BINARY(16), d DATETIME, b BIT(1), s ENUM('a','b'))",
            columns: "id, e, et, ia, ta, ip, ipt, HEX(u), d, b + 0, s",
            rows: &[
                "1, 'happy', 'ok', '{1,NULL,-3}', '{\"a,b\",\"ü\",NULL}', '2001:db8::1', \
                 '10.0.0.1/8', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-02-29', true, 'b'",
                "2, 'sad', 'sad', '{}', '{}', '::ffff:1.2.3.4', '::1', \
                 '00000000-0000-0000-0000-000000000000', '1000-01-01', false, 'a'",
                "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
                "4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'c'",
            ],
            expect: &[
                Expect::Row(
                    "1|happy|ok|[1,null,-3]|[\"a,b\",\"ü\",null]|2001:db8::1|10.0.0.1/8|\
                     A0EEBC999C0B4EF8BB6D6BB9BD380A11|2024-02-29 00:00:00|1|b",
                ),
                Expect::Row(
                    "2|sad|sad|[]|[]|::ffff:1.2.3.4|::1|00000000000000000000000000000000|\
                     1000-01-01 00:00:00|0|a",
                ),
                Expect::Row("3|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"),
                Expect::Refused(Some("s")),
            ],
        }],
    )
    .await;
}

/// The conventional pairs the other way: MariaDB INET4, BINARY(16), JSON, ENUM, SET and DATE into
/// PostgreSQL inet, uuid, json/jsonb, enum and text and timestamp; a JSON array into an array.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_conventional_pairs_to_postgres() {
    cross_pair(
        Source::MariaDb,
        &[CrossCase {
            table: "conv",
            pg_ddl: "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); \
                     CREATE TABLE conv (id int PRIMARY KEY, i4 inet, u uuid, j json, jb jsonb, \
                     e mood, et text, st text, d timestamp, vt mood, ja int[], jt text[])",
            maria_ddl: "CREATE TABLE conv (id INT PRIMARY KEY, i4 INET4, u BINARY(16), j JSON, \
                        jb JSON, e ENUM('sad','ok','happy'), et ENUM('x','y'), st SET('a','b'), \
                        d DATE, vt VARCHAR(10), ja JSON, jt JSON)",
            columns: "id, i4, u, j, jb, e, et, st, d, vt, ja, jt",
            rows: &[
                "1, '255.255.255.255', x'a0eebc999c0b4ef8bb6d6bb9bd380a11', \
                 '{\"a\": 1.50, \"b\": [true]}', '{\"a\": 1.50}', 'happy', 'y', 'a,b', \
                 '2024-02-29', 'ok', '[1, null, -3]', '[\"a,b\", \"ü\", null]'",
                "2, '0.0.0.0', x'00000000000000000000000000000000', 'null', '[]', 'sad', 'x', '', \
                 '1000-01-01', 'sad', '[]', '[]'",
                "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
                "4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'angry', NULL, NULL",
                // A JSON object is no array: PostgreSQL refuses it naming no column.
                "5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{\"k\": 1}', NULL",
            ],
            expect: &[
                Expect::Row(
                    "1|255.255.255.255|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|\
                     {\"a\": 1.50, \"b\": [true]}|{\"a\": 1.50}|happy|y|a,b|2024-02-29 00:00:00|ok|\
                     {1,NULL,-3}|{\"a,b\",ü,NULL}",
                ),
                Expect::Row(
                    "2|0.0.0.0|00000000-0000-0000-0000-000000000000|null|[]|sad|x||\
                     1000-01-01 00:00:00|sad|{}|{}",
                ),
                Expect::Row("3|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"),
                Expect::Refused(Some("vt")),
                Expect::Refused(Some("ja")),
            ],
        }],
    )
    .await;
}

/// PostgreSQL types without a MySQL/MariaDB counterpart (interval, timetz, money, xml, tsvector)
/// go into a MariaDB text column as PostgreSQL writes them: its text form, exactly. (`tandem check`
/// calls such a pairing lossy both ways, since arbitrary text does not parse back: it is made
/// one-way with `owner`.)
#[tokio::test(flavor = "multi_thread")]
async fn postgres_types_without_a_counterpart_reach_mariadb_as_their_text() {
    cross_pair(
        Source::Postgres,
        &[
            CrossCase {
                table: "textual",
                pg_ddl: "CREATE TABLE textual (id int PRIMARY KEY, iv interval, tz timetz, \
                     m money, x xml, tv tsvector)",
                maria_ddl: "CREATE TABLE textual (id INT PRIMARY KEY, iv VARCHAR(100), \
                        tz VARCHAR(40), m VARCHAR(40), x LONGTEXT, tv TEXT)",
                columns: "id, iv, tz, m, x, tv",
                rows: &[
                    "1, '1 year 2 mons 3 days 04:05:06.789', '12:34:56.5+02', 1234.56, \
                 '<a b=\"c\">t</a>', 'fat:1 cat:2'",
                    "2, '-00:00:01', '00:00:00-14', -0.01, '', ''",
                    "3, NULL, NULL, NULL, NULL, NULL",
                ],
                expect: &[
                    Expect::Row(
                        "1|1 year 2 mons 3 days 04:05:06.789|12:34:56.5+02|$1,234.56|\
                     <a b=\"c\">t</a>|'cat':2 'fat':1",
                    ),
                    Expect::Row("2|-00:00:01|00:00:00-14|-$0.01||"),
                    Expect::Row("3|NULL|NULL|NULL|NULL|NULL"),
                ],
            },
            CrossCase {
                // A TIME column holds no offset: a time at offset 0 arrives, any other is refused.
                table: "zoned",
                pg_ddl: "CREATE TABLE zoned (id int PRIMARY KEY, tz timetz)",
                maria_ddl: "CREATE TABLE zoned (id INT PRIMARY KEY, tz TIME(6))",
                columns: "id, tz",
                rows: &["1, '12:00:00.25+00'", "2, '12:00:00+02'"],
                expect: &[
                    Expect::Row("1|12:00:00.250000"),
                    Expect::Refused(Some("tz")),
                ],
            },
        ],
    )
    .await;
}
