//! Spatial values between MariaDB and PostgreSQL `bytea`: plain WKB, SRID 0 both ways, a non-zero
//! SRID refused with a dead letter naming the column.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::cross::{cross_pair, CrossCase, Expect, Source};
use crate::support::{start_tandem_run, stop_tandem_run, wait_for, Pair};

/// MariaDB spatial values reach a PostgreSQL `bytea` as plain OGC WKB (not the server's SRID-prefixed
/// form), any number of spatial columns per table; a value with a non-zero SRID, which plain WKB
/// cannot hold, is refused with a dead letter naming its column.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_geometry_to_postgres_bytea_is_wkb() {
    cross_pair(
        Source::MariaDb,
        &[CrossCase {
            table: "shapes",
            pg_ddl: "CREATE TABLE shapes (id int PRIMARY KEY, g bytea, p bytea, note text)",
            maria_ddl: "CREATE TABLE shapes (id INT PRIMARY KEY, g GEOMETRY, p POINT, \
                        note VARCHAR(20) CHARACTER SET utf8mb4)",
            columns: "id, encode(g, 'hex'), encode(p, 'hex'), note",
            rows: &[
                "1, ST_GeomFromText('POINT(1 2)'), ST_PointFromText('POINT(-1.5 3.25)'), 'ü'",
                "2, ST_GeomFromText('LINESTRING(0 0,1 1)'), NULL, NULL",
                "3, ST_GeomFromText('POLYGON((0 0,4 0,4 4,0 0))', 4326), NULL, 'srid'",
                "4, NULL, ST_PointFromText('POINT(0 0)', 3857), 'srid'",
                "5, ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))'), \
                 NULL, ''",
            ],
            expect: &[
                Expect::Row(
                    "1|0101000000000000000000f03f0000000000000040|\
                     0101000000000000000000f8bf0000000000000a40|ü",
                ),
                Expect::Row(
                    "2|01020000000200000000000000000000000000000000000000000000000000f03f\
                     000000000000f03f|NULL|NULL",
                ),
                Expect::Refused(Some("g")),
                Expect::Refused(Some("p")),
                Expect::Row(
                    "5|0107000000020000000101000000000000000000f03f000000000000f03f\
                     01020000000200000000000000000000000000000000000000000000000000f03f\
                     000000000000f03f|NULL|",
                ),
            ],
        }],
    )
    .await;
}

/// Plain WKB in a PostgreSQL `bytea` reaches a MariaDB spatial column as that geometry with SRID 0;
/// bytes that are no geometry are refused by MariaDB (error 1416) and dead-lettered.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_wkb_bytea_to_mariadb_geometry() {
    cross_pair(
        Source::Postgres,
        &[CrossCase {
            table: "shapes",
            pg_ddl: "CREATE TABLE shapes (id int PRIMARY KEY, g bytea, p bytea)",
            maria_ddl: "CREATE TABLE shapes (id INT PRIMARY KEY, g GEOMETRY, p POINT)",
            columns: "id, ST_AsText(g), ST_SRID(g), ST_AsText(p)",
            rows: &[
                "1, '\\x0101000000000000000000f03f0000000000000040', \
                 '\\x0101000000000000000000f8bf0000000000000a40'",
                "2, '\\x01020000000200000000000000000000000000000000000000000000000000f03f\
                 000000000000f03f', NULL",
                "3, '\\x0102', NULL",
                "4, NULL, NULL",
            ],
            expect: &[
                Expect::Row("1|POINT(1 2)|0|POINT(-1.5 3.25)"),
                Expect::Row("2|LINESTRING(0 0,1 1)|0|NULL"),
                // MariaDB names no column (error 1416): the one spatial value written is it.
                Expect::Refused(Some("g")),
                Expect::Row("4|NULL|NULL|NULL"),
            ],
        }],
    )
    .await;
}

/// MariaDB geometry reaches a PostgreSQL `bytea` as WKB and comes back unchanged (SRID 0 and
/// all) after an edit there; bytes that are no geometry, refused by MariaDB (error 1416),
/// go to the dead-letter table at once instead of being retried forever, and the rows after them
/// apply.
#[tokio::test(flavor = "multi_thread")]
async fn geometry_to_postgres_bytea_and_back_and_refused_bytes_dead_lettered() {
    let pair = Pair::start(
        "CREATE TABLE shapes (id int PRIMARY KEY, g bytea, note text)",
        "CREATE TABLE shapes (id INT PRIMARY KEY, g GEOMETRY, note VARCHAR(20))",
        "[[tables]]\nname = \"shapes\"\nkey = [\"id\"]\n",
    )
    .await;
    let run = start_tandem_run(&pair.config, 2).await;
    let mut maria = pair.maria.connect("desk").await.expect("connect MariaDB");
    maria
        .query_drop("INSERT INTO shapes VALUES (1, ST_GeomFromText('POINT(1 2)'), 'm')")
        .await
        .expect("insert a point");
    let pg = pair.pg.connect("crm").await.expect("connect PostgreSQL");
    let hex = |sql: &'static str| {
        let url = pair.maria.url("desk");
        async move {
            let mut c = mysql_async::Conn::from_url(url).await.ok()?;
            let v: Option<Option<String>> = c.query_first(sql).await.ok()?;
            let _ = c.disconnect().await;
            v.flatten()
        }
    };
    let want = hex("SELECT LOWER(HEX(g)) FROM shapes WHERE id = 1")
        .await
        .expect("the point's bytes");
    let wkb = hex("SELECT LOWER(HEX(ST_AsBinary(g))) FROM shapes WHERE id = 1")
        .await
        .expect("the point's WKB");
    wait_for(
        "the point on PostgreSQL",
        Duration::from_secs(30),
        || async {
            let row = pg
                .query_opt("SELECT encode(g, 'hex') FROM shapes WHERE id = 1", &[])
                .await
                .ok()??;
            (row.get::<_, Option<String>>(0).as_deref() == Some(wkb.as_str())).then_some(())
        },
    )
    .await;
    // Three source transactions: a refused one dead-letters itself alone.
    for sql in [
        "UPDATE shapes SET note = 'edited' WHERE id = 1",
        "INSERT INTO shapes VALUES (2, '\\x0102', 'not a geometry')",
        "INSERT INTO shapes VALUES (3, NULL, 'after')",
    ] {
        pg.execute(sql, &[]).await.expect("write on PostgreSQL");
    }
    wait_for(
        "the edit back on MariaDB and the row after the refused one",
        Duration::from_secs(30),
        || async {
            let back = hex("SELECT CONCAT(LOWER(HEX(g)), note) FROM shapes WHERE id = 1").await?;
            let after = hex("SELECT note FROM shapes WHERE id = 3").await?;
            (back == format!("{want}edited") && after == "after").then_some(())
        },
    )
    .await;
    let dead = hex("SELECT CAST(COUNT(*) AS CHAR) FROM tandem.dead_letter").await;
    assert_eq!(
        dead.as_deref(),
        Some("1"),
        "the refused row is dead-lettered"
    );
    maria.disconnect().await.ok();
    stop_tandem_run(run).await;
}

/// MariaDB spatial values into PostGIS `geometry` columns keep their SRID (PostGIS reads them as
/// EWKB), by copy and stream.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_geometry_to_postgis() {
    cross_pair(
        Source::MariaDb,
        &[CrossCase {
            table: "shapes",
            pg_ddl: "CREATE EXTENSION IF NOT EXISTS postgis; \
                     CREATE TABLE shapes (id int PRIMARY KEY, g geometry, p geometry(Point,4326))",
            maria_ddl: "CREATE TABLE shapes (id INT PRIMARY KEY, g GEOMETRY, p POINT)",
            columns: "id, ST_AsEWKT(g), ST_AsEWKT(p)",
            rows: &[
                "1, ST_GeomFromText('POINT(1 2)'), ST_PointFromText('POINT(-1.5 3.25)', 4326)",
                "2, ST_GeomFromText('POLYGON((0 0,4 0,4 4,0 0),(1 1,2 1,2 2,1 1))', 3857), NULL",
                "3, ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))', 4326), \
                 NULL",
                "4, NULL, NULL",
            ],
            expect: &[
                Expect::Row("1|POINT(1 2)|SRID=4326;POINT(-1.5 3.25)"),
                Expect::Row("2|SRID=3857;POLYGON((0 0,4 0,4 4,0 0),(1 1,2 1,2 2,1 1))|NULL"),
                Expect::Row("3|SRID=4326;GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))|NULL"),
                Expect::Row("4|NULL|NULL"),
            ],
        }],
    )
    .await;
}

/// PostGIS `geometry` values into MariaDB spatial columns keep their SRID; a 3-D geometry, which
/// MariaDB cannot hold, is refused with a dead letter.
#[tokio::test(flavor = "multi_thread")]
async fn postgis_to_mariadb_geometry() {
    cross_pair(
        Source::Postgres,
        &[CrossCase {
            table: "shapes",
            pg_ddl: "CREATE EXTENSION IF NOT EXISTS postgis; \
                     CREATE TABLE shapes (id int PRIMARY KEY, g geometry)",
            maria_ddl: "CREATE TABLE shapes (id INT PRIMARY KEY, g GEOMETRY)",
            columns: "id, ST_AsText(g), ST_SRID(g)",
            rows: &[
                "1, 'SRID=4326;POINT(1 2)'",
                "2, 'LINESTRING(0 0,1e300 -1e300)'",
                "3, 'SRID=3857;MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))'",
                "4, NULL",
                "5, 'POINT Z (1 2 3)'",
            ],
            expect: &[
                Expect::Row("1|POINT(1 2)|4326"),
                Expect::Row("2|LINESTRING(0 0,1e300 -1e300)|0"),
                Expect::Row("3|MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))|3857"),
                Expect::Row("4|NULL|NULL"),
                Expect::Refused(None),
            ],
        }],
    )
    .await;
}
