use super::*;
use crate::model::{ImageKind, Op};

const CONFIG: &str = r#"
[nodes.crm]
url = "postgres://postgres@127.0.0.1:5433/crm"
[nodes.helpdesk]
url = "mysql://root@127.0.0.1:3307/desk"

[[tables]]
name = "customer"
key = ["id"]
on = { crm = "public.customers", helpdesk = "clients" }
exclude = ["ssn"]

[[tables.columns]]
name = "id"
on = { crm = "id", helpdesk = "client_id" }

[[tables.columns]]
name = "status"
on = { crm = "status", helpdesk = "status_code" }
values = { helpdesk = { "Approved" = 1, "Pending review" = 2 } }
"#;

fn config() -> Config {
    Config::from_str_with_env(CONFIG, "t", &|_| None)
        .expect("valid")
        .0
}

fn row(fields: &[(&str, Value)]) -> RowImage {
    RowImage::new(
        ImageKind::Full,
        fields
            .iter()
            .map(|(n, v)| Field {
                name: (*n).into(),
                value: v.clone(),
            })
            .collect(),
    )
}

fn insert(table: TableRef, fields: &[(&str, Value)]) -> Change {
    Change {
        table,
        op: Op::Insert,
        before: None,
        after: Some(row(fields)),
    }
}

#[test]
fn renames_tables_columns_and_values_both_ways() {
    let c = config();
    let there = Mapper::new(&c, "crm", "helpdesk");
    let src = insert(
        TableRef::new("public", "customers"),
        &[
            ("id", Value::Int(7)),
            ("status", Value::Text("Approved".into())),
            ("email", Value::Text("a@b.c".into())),
            ("ssn", Value::Text("secret".into())),
            ("_tandem_origin", Value::Text("crm".into())),
            ("_tandem_version", Value::Int(3)),
        ],
    );
    let out = there.map(&src).expect("mapped table").expect("maps");
    assert_eq!(out.table, TableRef::new("desk", "clients"));
    assert_eq!(
        out.after,
        Some(row(&[
            ("client_id", Value::Int(7)),
            ("status_code", Value::Int(1)),
            ("email", Value::Text("a@b.c".into()))
        ]))
    );

    let back = Mapper::new(&c, "helpdesk", "crm");
    let round = back.map(&out).expect("mapped table").expect("maps back");
    assert_eq!(round.table, TableRef::new("public", "customers"));
    assert_eq!(
        round.after,
        Some(row(&[
            ("id", Value::Int(7)),
            ("status", Value::Text("Approved".into())),
            ("email", Value::Text("a@b.c".into()))
        ]))
    );
}

#[test]
fn a_value_missing_from_the_map_names_table_column_and_node() {
    let c = config();
    let m = Mapper::new(&c, "helpdesk", "crm");
    let src = insert(
        TableRef::new("desk", "clients"),
        &[("client_id", Value::Int(1)), ("status_code", Value::Int(9))],
    );
    let err = m
        .map(&src)
        .expect("mapped table")
        .expect_err("9 is not in the map");
    assert_eq!(
        (err.table.as_str(), err.column.as_str(), err.node.as_str()),
        ("customer", "status", "helpdesk")
    );
    assert!(
        err.to_string()
            .contains("add it to tables.columns.values.helpdesk"),
        "{err}"
    );
}

#[test]
fn unmapped_tables_are_not_on_the_link_and_plans_use_target_names() {
    let c = config();
    let m = Mapper::new(&c, "crm", "helpdesk");
    assert!(m
        .map(&insert(TableRef::new("public", "other"), &[]))
        .is_none());
    let plan = m
        .plan_for_source(&TableRef::new("public", "customers"))
        .expect("plan");
    assert_eq!(plan.key, vec!["client_id"]);
    assert_eq!(plan.version, "_tandem_version");
    assert!(plan.managed_version);
    assert_eq!(plan.target.to_string(), "desk.clients");
}

#[test]
fn transforms_and_null_stand_ins() {
    let text = r#"
[nodes.crm]
url = "postgres://postgres@127.0.0.1:5433/crm"
[nodes.helpdesk]
url = "mysql://root@127.0.0.1:3307/desk"

[[tables]]
name = "contact"
key = ["id"]

[[tables.columns]]
name = "email"
owner = "crm"
transform = { helpdesk = ["trim", "lowercase"] }

[[tables.columns]]
name = "phone"
owner = "crm"
transform = { helpdesk = ["e164:+1"] }

[[tables.columns]]
name = "note"
null_as = { helpdesk = "" }
"#;
    let c = Config::from_str_with_env(text, "t", &|_| None)
        .expect("valid")
        .0;
    let there = Mapper::new(&c, "crm", "helpdesk");
    let src = insert(
        TableRef::new("public", "contact"),
        &[
            ("id", Value::Int(1)),
            ("email", Value::Text(" Ada@Example.COM ".into())),
            ("phone", Value::Text("(415) 555-2671".into())),
            ("note", Value::Null),
        ],
    );
    let out = there.map(&src).unwrap().unwrap();
    assert_eq!(
        out.after,
        Some(row(&[
            ("id", Value::Int(1)),
            ("email", Value::Text("ada@example.com".into())),
            ("phone", Value::Text("+14155552671".into())),
            ("note", Value::Text(String::new())),
        ]))
    );
    let back = Mapper::new(&c, "helpdesk", "crm")
        .map(&out)
        .unwrap()
        .unwrap();
    assert_eq!(
        back.after.as_ref().and_then(|r| r.get("note")),
        Some(&Value::Null),
        "the stand-in reads back as NULL"
    );
    let bad = insert(
        TableRef::new("public", "contact"),
        &[
            ("id", Value::Int(2)),
            ("phone", Value::Text("call me".into())),
        ],
    );
    let err = there.map(&bad).unwrap().unwrap_err();
    assert_eq!(err.column, "phone");
    assert!(
        !err.to_string().contains("call me"),
        "errors never carry the value: {err}"
    );
}

#[test]
fn a_one_way_transform_needs_an_owner() {
    let text = r#"
[nodes.crm]
url = "postgres://postgres@127.0.0.1:5433/crm"
[nodes.helpdesk]
url = "mysql://root@127.0.0.1:3307/desk"
[[tables]]
name = "contact"
key = ["id"]
[[tables.columns]]
name = "email"
transform = { helpdesk = ["lowercase", "shout"] }
"#;
    let problems = Config::from_str_with_env(text, "t", &|_| None)
        .unwrap_err()
        .problems;
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert!(
        paths.contains(&"tables[0].columns[0].transform.helpdesk"),
        "{problems:?}"
    );
    assert!(
        paths.contains(&"tables[0].columns[0].transform.helpdesk[1]"),
        "{problems:?}"
    );
}

#[test]
fn row_filters_admit_convert_and_drop() {
    let text = r#"
[nodes.crm]
url = "postgres://postgres@127.0.0.1:5433/crm"
[nodes.helpdesk]
url = "mysql://root@127.0.0.1:3307/desk"
[[tables]]
name = "contact"
key = ["id"]
filter = { region = ["EU", "UK"] }
"#;
    let c = Config::from_str_with_env(text, "t", &|_| None)
        .expect("valid")
        .0;
    let m = Mapper::new(&c, "crm", "helpdesk");
    let t = TableRef::new("public", "contact");
    let img = |region: &str| {
        row(&[
            ("id", Value::Int(1)),
            ("region", Value::Text(region.into())),
        ])
    };
    let change = |op, before: Option<&str>, after: Option<&str>| Change {
        table: t.clone(),
        op,
        before: before.map(img),
        after: after.map(img),
    };
    let op_of = |c: Change| m.map(&c).map(|r| r.unwrap().op);
    assert_eq!(
        op_of(change(Op::Insert, None, Some("EU"))),
        Some(Op::Insert)
    );
    assert_eq!(
        op_of(change(Op::Insert, None, Some("US"))),
        None,
        "a row outside the filter stays home"
    );
    assert_eq!(
        op_of(change(Op::Update, Some("EU"), Some("UK"))),
        Some(Op::Update)
    );
    assert_eq!(
        op_of(change(Op::Update, Some("US"), Some("EU"))),
        Some(Op::Insert),
        "entering the filter"
    );
    assert_eq!(
        op_of(change(Op::Update, Some("EU"), Some("US"))),
        Some(Op::Delete),
        "leaving the filter"
    );
    assert_eq!(op_of(change(Op::Update, Some("US"), Some("US"))), None);
    assert_eq!(op_of(change(Op::Delete, Some("US"), None)), None);
    assert_eq!(
        op_of(change(Op::Delete, Some("UK"), None)),
        Some(Op::Delete)
    );
}

#[test]
fn a_transaction_is_mapped_in_order_leaving_out_what_is_not_synced() {
    use crate::model::ChangeSet;
    let c = config();
    let m = Mapper::new(&c, "crm", "helpdesk");
    let customers = TableRef::new("public", "customers");
    let tx = Transaction::at_pg(
        "crm",
        ChangeSet::Memory(vec![
            insert(customers.clone(), &[("id", Value::Int(1))]),
            insert(TableRef::new("public", "audit"), &[("id", Value::Int(2))]),
            insert(
                customers.clone(),
                &[
                    ("id", Value::Int(3)),
                    ("status", Value::Text("Gone".into())),
                ],
            ),
        ]),
    );
    let mapped: Vec<Mapped> = m.map_tx(&tx).map(|r| r.expect("in memory")).collect();
    assert_eq!(mapped.len(), 2, "the unsynced table's change is left out");
    assert!(mapped.iter().all(|x| x.plan.business == "customer"));
    assert_eq!(mapped[0].source.table, customers);
    let first = mapped[0].target.as_ref().expect("maps");
    assert_eq!(first.table, TableRef::new("desk", "clients"));
    assert_eq!(
        mapped[1].target.as_ref().map_err(|e| e.column.clone()),
        Err("status".to_string()),
        "a value outside the value map is the change's error, in its place"
    );
}
