//! Positions in a source database's log.
//!
//! A position is tagged by the kind of log it points into. Every position has a text form (`Display`)
//! that `FromStr` reads back exactly; it is what checkpoints store and what operators see. Positions
//! are only partially ordered (DESIGN rule 12): the one question asked of them is
//! [`Position::is_within`], "is everything up to this one already covered by that mark?"
//!
//! | kind            | text                                              | within the mark when          |
//! |-----------------|---------------------------------------------------|-------------------------------|
//! | PostgreSQL      | `pg:16/B374D848` or `pg:16/B374D848:16/B374D8A0`   | commit LSN, then LSN, <=      |
//! | binlog file     | `binlog:mysql-bin.000042:1234`                    | file sequence, then offset <= |
//! | MariaDB GTID    | `mariadb-gtid:0-1-42,1-2-7`                       | every domain's sequence <=    |
//! | MySQL GTID set  | `mysql-gtid:3e11fa47-…:1-5:7-9,…`                 | a subset of the mark's set    |

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A PostgreSQL WAL location (a 64-bit byte offset), printed as `HI/LO` in hex like PostgreSQL does.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl FromStr for Lsn {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PositionError::new(s, "a PostgreSQL LSN looks like 16/B374D848");
        let (hi, lo) = s.split_once('/').ok_or_else(bad)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| bad())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| bad())?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

/// Where a PostgreSQL transaction stands: the LSN of its commit record, and a progress LSN (the end of
/// the commit record for a whole transaction, or the LSN of a change inside it). Ordered by commit LSN
/// first, because PostgreSQL decodes transactions in commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PgPosition {
    pub commit_lsn: Lsn,
    pub lsn: Lsn,
}

/// A binlog file name and a byte offset in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BinlogPosition {
    pub file: String,
    pub offset: u64,
}

impl BinlogPosition {
    /// The file name split into base name and numeric sequence (`mysql-bin.000042` -> ("mysql-bin", 42)).
    fn sequence(&self) -> (&str, Option<u64>) {
        match self.file.rsplit_once('.') {
            Some((base, seq)) if !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()) => {
                (base, seq.parse().ok())
            }
            _ => (&self.file, None),
        }
    }
}

impl Ord for BinlogPosition {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sequence()
            .cmp(&other.sequence())
            .then_with(|| self.file.cmp(&other.file))
            .then(self.offset.cmp(&other.offset))
    }
}

impl PartialOrd for BinlogPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One MariaDB GTID: replication domain, originating server, sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MariaGtid {
    pub domain: u32,
    pub server_id: u32,
    pub seq: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server_id, self.seq)
    }
}

impl FromStr for MariaGtid {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            PositionError::new(
                s,
                "a MariaDB GTID looks like 0-1-42 (domain-server-sequence)",
            )
        };
        let mut it = s.trim().splitn(3, '-');
        let mut next = || it.next().ok_or_else(bad);
        Ok(MariaGtid {
            domain: next()?.parse().map_err(|_| bad())?,
            server_id: next()?.parse().map_err(|_| bad())?,
            seq: next()?.parse().map_err(|_| bad())?,
        })
    }
}

/// A MariaDB GTID position (`gtid_slave_pos` form): the last GTID of each replication domain.
/// Only partially ordered: each domain is its own sequence, so one list is within another when every
/// domain's sequence number is at or below the other's ([`MariaGtidList::is_within`]); two lists that
/// are each ahead in some domain are not comparable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct MariaGtidList {
    /// Keyed by domain id; at most one GTID per domain.
    pub domains: BTreeMap<u32, MariaGtid>,
}

impl MariaGtidList {
    /// Records `gtid` as the latest of its domain.
    pub fn advance(&mut self, gtid: MariaGtid) {
        self.domains.insert(gtid.domain, gtid);
    }

    /// Whether every transaction up to `self` is also up to `other`: each domain of `self` is in
    /// `other` at the same or a later sequence number. A domain `other` lacks is not within it.
    pub fn is_within(&self, other: &MariaGtidList) -> bool {
        self.domains
            .iter()
            .all(|(domain, g)| other.domains.get(domain).is_some_and(|o| g.seq <= o.seq))
    }
}

impl fmt::Display for MariaGtidList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.domains.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

impl FromStr for MariaGtidList {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut list = MariaGtidList::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let g: MariaGtid = part.parse()?;
            if list.domains.insert(g.domain, g).is_some() {
                return Err(PositionError::new(
                    s,
                    "a MariaDB GTID position names each domain once",
                ));
            }
        }
        Ok(list)
    }
}

/// A MySQL GTID set: for each source server UUID, the executed transaction number intervals.
/// Kept canonical (lowercase UUIDs, sorted, intervals merged), so structural equality is set equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct MysqlGtidSet {
    /// UUID text (with an optional `:tag` for MySQL 8.3 tagged GTIDs) -> sorted, disjoint, non-adjacent
    /// inclusive intervals.
    pub sets: BTreeMap<String, Vec<(u64, u64)>>,
}

impl MysqlGtidSet {
    /// Adds one transaction number for `uuid`.
    pub fn add(&mut self, uuid: &str, gno: u64) {
        self.add_interval(uuid, gno, gno);
    }

    fn add_interval(&mut self, uuid: &str, start: u64, end: u64) {
        let list = self.sets.entry(uuid.to_ascii_lowercase()).or_default();
        list.push((start, end));
        list.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(list.len());
        for &(s, e) in list.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *list = merged;
    }

    pub fn contains(&self, uuid: &str, gno: u64) -> bool {
        self.sets
            .get(&uuid.to_ascii_lowercase())
            .is_some_and(|l| l.iter().any(|&(s, e)| s <= gno && gno <= e))
    }

    /// Whether every transaction of `self` is also in `other`.
    pub fn is_subset(&self, other: &MysqlGtidSet) -> bool {
        self.sets.iter().all(|(uuid, intervals)| {
            let Some(theirs) = other.sets.get(uuid) else {
                return intervals.is_empty();
            };
            intervals
                .iter()
                .all(|&(s, e)| theirs.iter().any(|&(ts, te)| ts <= s && e <= te))
        })
    }

    /// Number of transactions in the set.
    pub fn count(&self) -> u128 {
        self.sets
            .values()
            .flatten()
            .map(|&(s, e)| u128::from(e - s) + 1)
            .sum()
    }
}

impl fmt::Display for MysqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (uuid, intervals)) in self.sets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(uuid)?;
            for (s, e) in intervals {
                if s == e {
                    write!(f, ":{s}")?;
                } else {
                    write!(f, ":{s}-{e}")?;
                }
            }
        }
        Ok(())
    }
}

impl FromStr for MysqlGtidSet {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            PositionError::new(
                s,
                "a MySQL GTID set looks like 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7",
            )
        };
        let mut set = MysqlGtidSet::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut fields = part.split(':');
            let uuid = fields.next().ok_or_else(bad)?;
            if uuid.len() != 36 || !uuid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return Err(bad());
            }
            let mut uuid = uuid.to_string();
            let mut any = false;
            for interval in fields {
                if interval
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                {
                    uuid = format!("{uuid}:{interval}");
                    continue;
                }
                let (a, b) = interval.split_once('-').unwrap_or((interval, interval));
                let a: u64 = a.parse().map_err(|_| bad())?;
                let b: u64 = b.parse().map_err(|_| bad())?;
                if a == 0 || b < a {
                    return Err(bad());
                }
                set.add_interval(&uuid, a, b);
                any = true;
            }
            if !any {
                return Err(bad());
            }
        }
        Ok(set)
    }
}

/// A position in some source's log. Positions are only partially ordered: positions of different kinds
/// do not compare, and GTID positions are one sequence per domain (or server), so the one question a
/// position answers is [`Position::is_within`]: is everything up to it already read or applied?
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Position {
    Postgres(PgPosition),
    Binlog(BinlogPosition),
    MariaGtid(MariaGtidList),
    MysqlGtid(MysqlGtidSet),
}

impl Position {
    /// Whether two positions point into the same kind of log and so can be compared.
    pub fn same_kind(&self, other: &Position) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// Whether the transaction at `self` is already included in a log read or applied up to `mark`:
    /// an LSN or file offset at or before it; for GTIDs, every domain (MariaDB) or every transaction
    /// (MySQL) of `self` covered by `mark`. Positions of different kinds are never within each other.
    pub fn is_within(&self, mark: &Position) -> bool {
        match (self, mark) {
            (Position::Postgres(a), Position::Postgres(b)) => a <= b,
            (Position::Binlog(a), Position::Binlog(b)) => a <= b,
            (Position::MariaGtid(a), Position::MariaGtid(b)) => a.is_within(b),
            (Position::MysqlGtid(a), Position::MysqlGtid(b)) => a.is_subset(b),
            _ => false,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Postgres(p) if p.lsn == p.commit_lsn => write!(f, "pg:{}", p.commit_lsn),
            Position::Postgres(p) => write!(f, "pg:{}:{}", p.commit_lsn, p.lsn),
            Position::Binlog(b) => write!(f, "binlog:{}:{}", b.file, b.offset),
            Position::MariaGtid(g) => write!(f, "mariadb-gtid:{g}"),
            Position::MysqlGtid(g) => write!(f, "mysql-gtid:{g}"),
        }
    }
}

impl FromStr for Position {
    type Err = PositionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, rest) = s.split_once(':').ok_or_else(|| {
            PositionError::new(
                s,
                "a position starts with pg:, binlog:, mariadb-gtid: or mysql-gtid:",
            )
        })?;
        match kind {
            "pg" => {
                let (commit, lsn) = match rest.split_once(':') {
                    Some((c, l)) => (c.parse()?, l.parse()?),
                    None => {
                        let c: Lsn = rest.parse()?;
                        (c, c)
                    }
                };
                Ok(Position::Postgres(PgPosition {
                    commit_lsn: commit,
                    lsn,
                }))
            }
            "binlog" => {
                let bad = || {
                    PositionError::new(
                        s,
                        "a binlog position looks like binlog:mysql-bin.000042:1234",
                    )
                };
                let (file, offset) = rest.rsplit_once(':').ok_or_else(bad)?;
                if file.is_empty() {
                    return Err(bad());
                }
                let offset = offset.parse().map_err(|_| bad())?;
                Ok(Position::Binlog(BinlogPosition {
                    file: file.to_string(),
                    offset,
                }))
            }
            "mariadb-gtid" => Ok(Position::MariaGtid(rest.parse()?)),
            "mysql-gtid" => Ok(Position::MysqlGtid(rest.parse()?)),
            _ => Err(PositionError::new(
                s,
                "a position starts with pg:, binlog:, mariadb-gtid: or mysql-gtid:",
            )),
        }
    }
}

impl TryFrom<String> for Position {
    type Error = PositionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Position> for String {
    fn from(p: Position) -> String {
        p.to_string()
    }
}

/// A position text that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid position {text:?}: {hint}")]
pub struct PositionError {
    pub text: String,
    pub hint: &'static str,
}

impl PositionError {
    fn new(text: &str, hint: &'static str) -> Self {
        PositionError {
            text: text.chars().take(200).collect(),
            hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pg() -> impl Strategy<Value = Position> {
        (any::<u64>(), any::<u64>()).prop_map(|(c, l)| {
            Position::Postgres(PgPosition {
                commit_lsn: Lsn(c),
                lsn: Lsn(l),
            })
        })
    }

    fn binlog() -> impl Strategy<Value = Position> {
        ("[a-z][a-z-]{0,10}", 0u32..1_000_000, any::<u64>()).prop_map(|(base, n, offset)| {
            Position::Binlog(BinlogPosition {
                file: format!("{base}.{n:06}"),
                offset,
            })
        })
    }

    fn maria() -> impl Strategy<Value = Position> {
        proptest::collection::btree_map(any::<u32>(), (any::<u32>(), any::<u64>()), 0..4).prop_map(
            |m| {
                let mut l = MariaGtidList::default();
                for (domain, (server_id, seq)) in m {
                    l.advance(MariaGtid {
                        domain,
                        server_id,
                        seq,
                    });
                }
                Position::MariaGtid(l)
            },
        )
    }

    fn mysql() -> impl Strategy<Value = Position> {
        proptest::collection::vec((any::<[u8; 16]>(), 1u64..1000, 0u64..1000), 1..6).prop_map(|v| {
            let mut s = MysqlGtidSet::default();
            for (u, a, len) in v {
                s.add_interval(&crate::model::value::format_uuid(&u), a, a + len);
            }
            Position::MysqlGtid(s)
        })
    }

    fn any_position() -> impl Strategy<Value = Position> {
        prop_oneof![pg(), binlog(), maria(), mysql()]
    }

    proptest! {
        #[test]
        fn display_from_str_round_trip(p in any_position()) {
            let text = p.to_string();
            let back: Position = text.parse().unwrap();
            prop_assert_eq!(&back, &p);
            prop_assert_eq!(back.to_string(), text);
        }

        #[test]
        fn is_within_is_a_partial_order(a in any_position(), b in any_position(), c in any_position()) {
            prop_assert!(a.is_within(&a));
            if a.is_within(&b) && b.is_within(&a) {
                prop_assert_eq!(&a, &b);
            }
            if a.is_within(&b) && b.is_within(&c) {
                prop_assert!(a.is_within(&c));
            }
            if !a.same_kind(&b) {
                prop_assert!(!a.is_within(&b));
            }
        }

        #[test]
        fn maria_gtid_within_means_every_domain(
            a in proptest::collection::btree_map(0u32..6, 0u64..20, 1..4),
            b in proptest::collection::btree_map(0u32..6, 0u64..20, 1..4),
        ) {
            let list = |m: &BTreeMap<u32, u64>| {
                let mut l = MariaGtidList::default();
                for (&domain, &seq) in m {
                    l.advance(MariaGtid { domain, server_id: 1, seq });
                }
                l
            };
            let want = a.iter().all(|(d, s)| b.get(d).is_some_and(|t| s <= t));
            prop_assert_eq!(list(&a).is_within(&list(&b)), want);
        }

        #[test]
        fn pg_orders_by_commit_lsn_first(c1 in any::<u64>(), c2 in any::<u64>(), l1 in any::<u64>(), l2 in any::<u64>()) {
            let a = PgPosition { commit_lsn: Lsn(c1), lsn: Lsn(l1) };
            let b = PgPosition { commit_lsn: Lsn(c2), lsn: Lsn(l2) };
            if c1 != c2 {
                prop_assert_eq!(a.cmp(&b), c1.cmp(&c2));
            }
        }

        #[test]
        fn binlog_orders_by_file_sequence_then_offset(n1 in 0u32..2_000_000, n2 in 0u32..2_000_000, o1 in any::<u64>(), o2 in any::<u64>()) {
            let a = BinlogPosition { file: format!("mysql-bin.{n1:06}"), offset: o1 };
            let b = BinlogPosition { file: format!("mysql-bin.{n2:06}"), offset: o2 };
            prop_assert_eq!(a.cmp(&b), (n1, o1).cmp(&(n2, o2)));
        }

        #[test]
        fn garbage_never_panics(s in ".*") {
            let _ = s.parse::<Position>();
        }
    }

    #[test]
    fn known_texts() {
        let p: Position = "pg:16/B374D848".parse().unwrap();
        assert_eq!(
            p,
            Position::Postgres(PgPosition {
                commit_lsn: Lsn(0x16_B374_D848),
                lsn: Lsn(0x16_B374_D848)
            })
        );
        let b: Position = "binlog:mysql-bin.000010:4".parse().unwrap();
        let a: Position = "binlog:mysql-bin.000009:99999".parse().unwrap();
        assert!(
            a.is_within(&b) && !b.is_within(&a),
            "file 9 sorts before file 10 although '9' > '1' as text"
        );
        let g: Position = "mariadb-gtid:0-1-42,1-2-7".parse().unwrap();
        assert_eq!(g.to_string(), "mariadb-gtid:0-1-42,1-2-7");
        // A transaction in a domain numbered below every domain of the mark is not within it, though
        // its list sorts first as text; nor is one ahead in any domain.
        let mark: Position = "mariadb-gtid:5-1-100".parse().unwrap();
        let low: Position = "mariadb-gtid:1-1-1,5-1-100".parse().unwrap();
        assert!(!low.is_within(&mark) && mark.is_within(&low));
        let ahead: Position = "mariadb-gtid:0-1-41,1-2-8".parse().unwrap();
        assert!(!ahead.is_within(&g) && !g.is_within(&ahead));
        let mysql_mark: Position = "mysql-gtid:3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10"
            .parse()
            .unwrap();
        let inside: Position = "mysql-gtid:3e11fa47-71ca-11e1-9e33-c80aa9429562:2-4:7"
            .parse()
            .unwrap();
        assert!(inside.is_within(&mysql_mark) && !mysql_mark.is_within(&inside));
        let m: Position = "mysql-gtid:3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:6:9"
            .parse()
            .unwrap();
        assert_eq!(
            m.to_string(),
            "mysql-gtid:3e11fa47-71ca-11e1-9e33-c80aa9429562:1-6:9"
        );
        assert!("pg:zz".parse::<Position>().is_err());
        assert!("mysql-gtid:nope:1".parse::<Position>().is_err());
        assert!("mariadb-gtid:0-1-2,0-1-3".parse::<Position>().is_err());
    }
}
