use super::*;

const CONFIG: &str = r#"
[nodes.crm]
url = "postgres://postgres@127.0.0.1:5433/crm"
[nodes.helpdesk]
url = "mysql://root@127.0.0.1:3307/desk"

[[tables]]
name = "customer"
key = ["id"]
on = { crm = "public.customers", helpdesk = "clients" }

[[tables.columns]]
name = "id"
on = { helpdesk = "client_id" }
"#;

fn config(text: &str) -> Config {
    Config::from_str_with_env(text, "t", &|_| None)
        .expect("valid")
        .0
}

fn sequence(increment: i64, next: i64, max: Option<i64>) -> Generator {
    Generator {
        column: "id".into(),
        kind: GeneratorKind::Sequence {
            name: "customers_id_seq".into(),
            increment,
            next,
        },
        max,
    }
}

fn auto(increment: i64, offset: i64, max: Option<i64>) -> Generator {
    Generator {
        column: "client_id".into(),
        kind: GeneratorKind::AutoIncrement { increment, offset },
        max,
    }
}

fn generators(crm: Generator, helpdesk: Generator) -> NodeGenerators {
    let mut g = NodeGenerators::new();
    g.insert(
        "crm".into(),
        [(TableRef::new("public", "customers"), vec![crm])].into(),
    );
    g.insert(
        "helpdesk".into(),
        [(TableRef::new("desk", "clients"), vec![helpdesk])].into(),
    );
    g
}

#[test]
fn the_first_value_of_a_share_above_the_largest_key() {
    let two = |offset| Slot {
        increment: 2,
        offset,
    };
    assert_eq!(first_above(two(1), None), 1);
    assert_eq!(first_above(two(2), None), 2);
    assert_eq!(first_above(two(1), Some(7)), 9);
    assert_eq!(first_above(two(2), Some(7)), 8);
    assert_eq!(first_above(two(2), Some(8)), 10);
    assert_eq!(first_above(two(2), Some(-5)), 2);
}

#[test]
fn progressions_collide_when_their_residues_agree_modulo_the_gcd() {
    let seq = |increment, next| GeneratorKind::Sequence {
        name: "s".into(),
        increment,
        next,
    };
    let auto = |increment, offset| GeneratorKind::AutoIncrement { increment, offset };
    assert!(collide(&seq(1, 5), &auto(1, 1)));
    assert!(!collide(&seq(2, 7), &auto(2, 2)));
    assert!(collide(&seq(2, 7), &auto(2, 1)));
    // 3k+1 and 6k+4 meet at 4, 10, ...; 3k+1 and 6k+2 never do.
    assert!(collide(&seq(3, 1), &seq(6, 4)));
    assert!(!collide(&seq(3, 1), &seq(6, 2)));
    // The server ignores an offset above the increment.
    assert_eq!(auto(2, 5).progression(), (2, 1));
}

#[test]
fn check_refuses_both_nodes_counting_from_one_and_names_the_fix() {
    let c = config(CONFIG);
    let problems = analyze(
        &c,
        &generators(sequence(1, 4, Some(3)), auto(1, 1, Some(5))),
    );
    assert_eq!(problems.len(), 2, "{problems:#?}");
    let crm = &problems[0];
    assert!(
        crm.message.contains("key column id of table customer"),
        "{crm}"
    );
    assert!(crm.message.contains("node crm"), "{crm}");
    // Above the largest key of either node (5), in crm's share (odd values).
    assert!(
        crm.fix
            .contains("ALTER SEQUENCE customers_id_seq INCREMENT BY 2 RESTART WITH 7"),
        "{crm}"
    );
    let helpdesk = &problems[1];
    assert!(
        helpdesk
            .fix
            .contains("SET GLOBAL auto_increment_increment = 2, auto_increment_offset = 2"),
        "{helpdesk}"
    );
    assert!(
        helpdesk
            .fix
            .contains("ALTER TABLE `desk`.`clients` AUTO_INCREMENT = 6"),
        "{helpdesk}"
    );
    assert!(helpdesk.fix.contains("my.cnf"), "{helpdesk}");
}

#[test]
fn disjoint_generators_one_generator_or_an_owner_pass() {
    let c = config(CONFIG);
    let disjoint = generators(sequence(2, 9, Some(7)), auto(2, 2, Some(8)));
    assert!(analyze(&c, &disjoint).is_empty());
    assert!(plan(&c, &disjoint).is_empty());
    let mut one = generators(sequence(1, 1, None), auto(1, 1, None));
    one.remove("helpdesk");
    assert!(analyze(&c, &one).is_empty());
    let owned = config(&CONFIG.replace(
        "on = { crm = \"public.customers\", helpdesk = \"clients\" }",
        "on = { crm = \"public.customers\", helpdesk = \"clients\" }\nowner = \"helpdesk\"",
    ));
    assert!(analyze(&owned, &generators(sequence(1, 1, None), auto(1, 1, None))).is_empty());
}

#[test]
fn plan_gives_every_generating_node_its_share() {
    let c = config(CONFIG);
    let fixes = plan(&c, &generators(sequence(1, 1, None), auto(1, 1, None)));
    let sql: Vec<Vec<String>> = fixes.iter().map(Fix::statements).collect();
    assert_eq!(
        sql,
        vec![
            vec!["ALTER SEQUENCE customers_id_seq INCREMENT BY 2 RESTART WITH 1".to_string()],
            vec![
                "SET GLOBAL auto_increment_increment = 2, auto_increment_offset = 2".to_string(),
                "ALTER TABLE `desk`.`clients` AUTO_INCREMENT = 2".to_string()
            ]
        ]
    );
}
