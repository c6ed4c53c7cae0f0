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
        err,
        MappingError {
            table: "customer".into(),
            column: "status".into(),
            node: "helpdesk".into()
        }
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
