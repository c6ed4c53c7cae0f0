//! Type fidelity on same-engine pairs, the rest of each manual's built-in types: geometric, network,
//! text-search, range and multirange, LSN, snapshot and JSON path types of PostgreSQL, and every
//! MariaDB integer, decimal, float, string, blob, temporal and spatial type at its edges, compared
//! byte for byte after the copy and the stream (see `type_fidelity`).

use crate::type_fidelity::{mariadb_pair, postgres_pair, Case};

/// PostgreSQL's remaining built-in types at their edges.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_catalog_types_arrive_exactly() {
    postgres_pair(&[
        Case {
            table: "geo",
            ddl: "CREATE TABLE geo (id int PRIMARY KEY, l line, s lseg, b box, po path, pc path, \
                  pg polygon, c circle, ba box[])",
            columns: "id, l, s, b, po, pc, pg, c, ba",
            rows: &[
                "1, '{1,-1,0}', '[(0,0),(1.5,2)]', '((3,4),(1,2))', '[(0,0),(1,1),(2,0)]', \
                 '((0,0),(1,1),(2,0))', '((0,0),(4,0),(4,4),(0,4))', '<(1,2),3.5>', \
                 '{(1,1),(0,0);(3,3),(2,2);NULL}'",
                "2, '{0,1,-1e-300}', '[(-1e300,0),(1e300,0)]', '((0,0),(0,0))', '[(0,0)]', \
                 '((1,1))', '((0,0))', '<(0,0),0>', '{}'",
                "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
            ],
            generated_insert: None,
        },
        Case {
            table: "net",
            ddl: "CREATE TABLE net (id int PRIMARY KEY, i inet, c cidr, m macaddr, m8 macaddr8, \
                  q tsquery, v tsvector, lsn pg_lsn, snap pg_snapshot, jp jsonpath, n name, \
                  o oid, ch \"char\")",
            columns: "id, i, c, m, m8, q, v, lsn, snap, jp, n, o, ch",
            rows: &[
                "1, '255.255.255.255/32', '2001:db8::/32', '08-00-2b-01-02-03', \
                 '08:00:2b:01:02:03:04:05', 'fat & (rat | ! cat) <-> dog:*', \
                 'a:1A fat:2B,4C cat:5D ü', 'FFFFFFFF/FFFFFFFF', '10:20:10,14,15', \
                 '$.a[*] ? (@ > 1 && @ like_regex \"^x\" flag \"i\")', 'ünïcode name', \
                 4294967295, 'Ä'",
                "2, '::', '0.0.0.0/0', '00:00:00:00:00:00', '00:00:00:00:00:00:00:00', '', '', \
                 '0/0', '1:1:', '$', '', 0, ''",
                "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
            ],
            generated_insert: None,
        },
        Case {
            table: "ranges",
            ddl: "CREATE TABLE ranges (id int PRIMARY KEY, i8 int8range, nr numrange, \
                  dr daterange, tr tsrange, mr int4multirange, dm datemultirange)",
            columns: "id, i8, nr, dr, tr, mr, dm",
            rows: &[
                "1, '[-9223372036854775808,9223372036854775807)', '(-1.5,NaN]', \
                 '[4713-01-01 BC,5874897-12-30]', '[,infinity)', '{[1,3),[5,7)}', \
                 '{[2020-01-01,2020-02-01),[2021-01-01,)}'",
                "2, 'empty', '(,)', 'empty', '(\"2020-01-01 00:00:00.000001\",)', '{}', '{}'",
                "3, NULL, NULL, NULL, NULL, NULL, NULL",
            ],
            generated_insert: None,
        },
        Case {
            table: "edges",
            ddl: "CREATE TABLE edges (id int PRIMARY KEY, ss smallserial, bs bigserial, \
                  r real, f double precision, n55 numeric(5,5), n1000 numeric(1000,0), \
                  d date, t time, tz timetz, iv interval, vc varchar, by bytea, \
                  m money, bo boolean, u uuid)",
            columns: "id, ss, bs, r, f, n55, n1000, d, t, tz, iv, vc, by, m, bo, u",
            rows: &[
                "1, 32767, 9223372036854775807, 3.4028235e38, 1.7976931348623157e308, 0.99999, \
                 repeat('9', 1000)::numeric, '5874897-12-31', '24:00:00', '24:00:00-15:59', \
                 '178000000 years', repeat('ü', 10000), decode(repeat('00ff', 50000), 'hex'), \
                 '92233720368547758.07', true, 'ffffffff-ffff-ffff-ffff-ffffffffffff'",
                "2, -32768, -9223372036854775808, 1.4e-45, 4.9e-324, -0.99999, \
                 -(repeat('9', 1000)::numeric), '4713-01-01 BC', '00:00:00.000001', \
                 '00:00:00+15:59', '-178000000 years -2147483648 days -2562047788:00:54.775807', \
                 '', '\\x', '-0.01', false, '00000000-0000-0000-0000-000000000000'",
                "3, 0, 0, '-Infinity', 'NaN', 0, 0, '-infinity', NULL, NULL, NULL, NULL, NULL, \
                 NULL, NULL, NULL",
            ],
            generated_insert: None,
        },
    ])
    .await;
}

/// MariaDB's remaining built-in types at their edges: unsigned integers, DECIMAL without scale and
/// with scale only, FLOAT(p), every TEXT and BLOB size, CHAR/BINARY at 255, temporal types at each
/// precision, BOOLEAN, spatial subtypes and the multi-geometries.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_catalog_types_arrive_exactly() {
    mariadb_pair(&[
        Case {
            table: "nums",
            ddl: "CREATE TABLE nums (id INT PRIMARY KEY, su SMALLINT UNSIGNED, si SMALLINT, \
                  mu MEDIUMINT UNSIGNED, iu INT UNSIGNED, ii INT, d0 DECIMAL(65,0), \
                  d55 DECIMAL(5,5), d10 DECIMAL, f53 FLOAT(53), f10 FLOAT(10), re REAL, \
                  bo BOOLEAN, b8 BIT(8), b33 BIT(33))",
            columns: "id, su, si, mu, iu, ii, d0, d55, d10, f53, f10, re, bo, b8, b33",
            rows: &[
                "1, 65535, -32768, 16777215, 4294967295, -2147483648, \
                 99999999999999999999999999999999999999999999999999999999999999999, 0.99999, \
                 9999999999, 1.7976931348623157e308, 3.40282e38, -2.2250738585072014e-308, \
                 TRUE, b'11111111', b'100000000000000000000000000000001'",
                "2, 0, 32767, 0, 0, 2147483647, \
                 -99999999999999999999999999999999999999999999999999999999999999999, -0.99999, \
                 -9999999999, 4.9e-324, 1.17549e-38, 0, FALSE, b'0', b'0'",
                "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
                 NULL",
            ],
            generated_insert: None,
        },
        Case {
            table: "strs",
            ddl: "CREATE TABLE strs (id INT PRIMARY KEY, c255 CHAR(255) CHARACTER SET utf8mb4, \
                  b255 BINARY(255), tt TINYTEXT, t TEXT, mt MEDIUMTEXT CHARACTER SET utf8mb4, \
                  lt LONGTEXT CHARACTER SET utf8mb4, tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, \
                  lb LONGBLOB, u16 VARCHAR(10) CHARACTER SET utf16, asc1 VARCHAR(5) CHARACTER SET ascii, \
                  bin VARCHAR(5) CHARACTER SET binary)",
            columns: "id, c255, b255, tt, t, mt, lt, tb, bl, mb, lb, u16, asc1, bin",
            rows: &[
                "1, REPEAT('€', 255), REPEAT(x'ff', 255), REPEAT('x', 255), REPEAT('y', 65535), \
                 REPEAT('😀', 100000), REPEAT('ü', 300000), REPEAT(x'00', 255), \
                 REPEAT(x'01', 65535), REPEAT(x'02', 70000), REPEAT(x'03', 300000), '😀ü€', \
                 'abc~\\t', x'00ff'",
                "2, '', x'', '', '', '', '', x'', x'', x'', x'', '', '', x''",
                "3, 'trailing  ', x'0100', ' lead', 'a\\nb', 'c\\rd', 'e\\0f', NULL, NULL, NULL, \
                 NULL, NULL, NULL, NULL",
            ],
            generated_insert: None,
        },
        Case {
            table: "temporal",
            ddl: "CREATE TABLE temporal (id INT PRIMARY KEY, d DATE, dt0 DATETIME, \
                  dt1 DATETIME(1), dt6 DATETIME(6), ts0 TIMESTAMP NULL, ts3 TIMESTAMP(3) NULL, \
                  t0 TIME, t3 TIME(3), t6 TIME(6), y YEAR)",
            columns: "id, d, dt0, dt1, dt6, ts0, ts3, t0, t3, t6, y",
            rows: &[
                "1, '1000-01-01', '1000-01-01 00:00:00', '1000-01-01 00:00:00.1', \
                 '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01', '1970-01-01 00:00:01.001', \
                 '-838:59:59', '-838:59:58.999', '-838:59:58.999999', 1901",
                "2, '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.9', \
                 '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', '2038-01-19 03:14:07.999', \
                 '838:59:59', '838:59:58.999', '838:59:58.999999', 2155",
                "3, '0001-01-01', '0001-01-01 00:00:00', NULL, NULL, NULL, NULL, '00:00:00', \
                 '-00:00:00.001', '-00:00:00.000001', 0",
            ],
            generated_insert: None,
        },
        Case {
            table: "spatials",
            ddl: "CREATE TABLE spatials (id INT PRIMARY KEY, ls LINESTRING, pg POLYGON, \
                  mp MULTIPOINT, ml MULTILINESTRING, mpg MULTIPOLYGON, gc GEOMETRYCOLLECTION)",
            columns: "id, ls, pg, mp, ml, mpg, gc",
            rows: &[
                "1, ST_GeomFromText('LINESTRING(0 0,1e300 -1e300)'), \
                 ST_GeomFromText('POLYGON((0 0,4 0,4 4,0 0),(1 1,2 1,2 2,1 1))', 4326), \
                 ST_GeomFromText('MULTIPOINT(1 1,2 2)'), \
                 ST_GeomFromText('MULTILINESTRING((0 0,1 1),(2 2,3 3))'), \
                 ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))'), \
                 ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),GEOMETRYCOLLECTION(POINT(2 2)))')",
                "2, NULL, NULL, NULL, NULL, NULL, ST_GeomFromText('GEOMETRYCOLLECTION EMPTY')",
            ],
            generated_insert: None,
        },
    ])
    .await;
}

/// PostGIS `geometry` (2-D with and without SRID, 3-D, measured, empty, nested collections) on a
/// PostgreSQL pair, byte for byte (2-D values travel as SRID + WKB and are written back as EWKB).
#[tokio::test(flavor = "multi_thread")]
async fn postgis_geometry_arrives_exactly() {
    postgres_pair(&[Case {
        table: "shapes",
        ddl: "CREATE EXTENSION IF NOT EXISTS postgis; \
              CREATE TABLE shapes (id int PRIMARY KEY, g geometry, p geometry(Point,4326), \
              ga geometry[])",
        columns: "id, g, p, ga",
        rows: &[
            "1, 'SRID=3857;POLYGON((0 0,4 0,4 4,0 0))', 'SRID=4326;POINT(1 2)', \
             ARRAY['POINT(1 1)'::geometry, NULL]",
            "2, 'POINT Z (1 2 3)', NULL, NULL",
            "3, 'POINT M (1 2 3)', NULL, NULL",
            "4, 'GEOMETRYCOLLECTION EMPTY', NULL, '{}'",
            "5, 'SRID=4326;GEOMETRYCOLLECTION(POINT(1 1),GEOMETRYCOLLECTION(LINESTRING(0 0,1 1)))', \
             NULL, NULL",
            "6, NULL, NULL, NULL",
        ],
        generated_insert: None,
    }])
    .await;
}
