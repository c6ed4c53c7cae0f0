use super::*;

fn link(source: &str, target: &str) -> LinkStatus {
    LinkStatus {
        state: "streaming".into(),
        source_position: Some("pg:0/10".into()),
        confirmed_position: Some("pg:0/10".into()),
        ..LinkStatus::unknown(source, target)
    }
}

fn judged(links: &[LinkStatus], caught_up: &Settled, tables: &[TableCheck]) -> Vec<Unmet> {
    judge(&Facts {
        to: "crm",
        links,
        caught_up,
        verify: Ok(tables),
        generators: &[],
        unread: &[],
    })
}

fn conditions(unmet: &[Unmet]) -> Vec<(&str, &str)> {
    unmet
        .iter()
        .map(|u| (u.condition, u.subject.as_str()))
        .collect()
}

#[test]
fn a_clean_pair_is_ready() {
    let links = [link("helpdesk", "crm"), link("crm", "helpdesk")];
    let tables = [TableCheck {
        table: "customer".into(),
        rows: 20,
        differences: 0,
    }];
    assert_eq!(judged(&links, &Settled::default(), &tables), vec![]);
}

#[test]
fn each_unmet_condition_is_named_with_its_fix() {
    let mut into = link("helpdesk", "crm");
    into.review_queue = 1;
    into.conflicts_open = 3;
    into.dead_letters_open = 2;
    into.paused = vec![crate::observe::probe::PausedTable {
        table: "customer".into(),
        held: 4,
        reason: "column(s) email of table customer no longer exist on node crm".into(),
    }];
    let mut back = link("crm", "helpdesk");
    back.state = "stopped".into();
    let caught_up = Settled {
        lagging: vec!["helpdesk_to_crm".into()],
        ..Settled::default()
    };
    let tables = [TableCheck {
        table: "customer".into(),
        rows: 20,
        differences: 1,
    }];
    let unmet = judged(&[into, back], &caught_up, &tables);
    assert_eq!(
        conditions(&unmet),
        vec![
            ("caught_up", "helpdesk_to_crm"),
            ("review_queue", "helpdesk_to_crm"),
            ("conflicts", "helpdesk_to_crm"),
            ("schema_pause", "helpdesk_to_crm"),
            ("dead_letters", "helpdesk_to_crm"),
            ("rollback", "crm_to_helpdesk"),
            ("verify", "customer"),
        ]
    );
    assert!(unmet[1]
        .fix
        .contains("tandem conflicts resolve --config F --node crm"));
    assert!(unmet[3].detail.contains("email") && unmet[3].fix.contains("schema on crm"));
    assert!(unmet[4]
        .fix
        .contains("tandem dead-letter replay --config F --node crm"));
    assert!(unmet[5].fix.contains("tandem run --config F --node crm"));
    assert!(unmet[6].fix.contains("--repair"));
}

#[test]
fn a_link_into_the_node_that_does_not_stream_is_unmet_even_when_caught_up() {
    let mut into = link("helpdesk", "crm");
    into.state = "lost".into();
    into.retention = "lost: no slot tandem_helpdesk_to_crm on helpdesk; run `tandem setup`".into();
    let unmet = judged(&[into, link("crm", "helpdesk")], &Settled::default(), &[]);
    assert_eq!(conditions(&unmet), vec![("streaming", "helpdesk_to_crm")]);
    assert!(unmet[0].fix.starts_with("lost: no slot"));
}

#[test]
fn an_unreachable_node_once_a_failed_verify_and_colliding_generators_are_unmet() {
    let mut into = link("helpdesk", "crm");
    into.state = "unknown".into();
    into.problems = vec!["node helpdesk: connection refused".into()];
    let back = LinkStatus {
        problems: into.problems.clone(),
        ..LinkStatus::unknown("crm", "helpdesk")
    };
    let error = "a node could not be read".to_string();
    let generators = [Problem::error("tables[0].key", "collide", "run setup")];
    let unread = [("helpdesk".to_string(), "refused".to_string())];
    let unmet = judge(&Facts {
        to: "crm",
        links: &[into, back],
        caught_up: &Settled::default(),
        verify: Err(&error),
        generators: &generators,
        unread: &unread,
    });
    assert_eq!(
        conditions(&unmet),
        vec![
            ("node", "helpdesk_to_crm"),
            ("streaming", "helpdesk_to_crm"),
            ("rollback", "crm_to_helpdesk"),
            ("verify", "all tables"),
            ("generators", "tables[0].key"),
            ("generators", "helpdesk"),
        ]
    );
}
