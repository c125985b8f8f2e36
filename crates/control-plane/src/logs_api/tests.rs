use nimbus_log_filter::FilterPattern;
use nimbus_store::{LogEvent, LogQuery, LogStore, SqliteStore};
use serde_json::{json, Value};

use super::{filter_page, handle, ScanBudget, SCAN_BUDGET};

const GROUP: &str = "/aws/lambda/f";

fn store_with(messages: &[&str]) -> SqliteStore {
    let s = SqliteStore::in_memory().unwrap();
    let events: Vec<LogEvent> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| LogEvent {
            group: GROUP.into(),
            stream: if i % 2 == 0 { "a" } else { "b" }.into(),
            timestamp: 1_000 + i as i64,
            message: (*m).into(),
        })
        .collect();
    s.append_logs(&events).unwrap();
    s
}

/// Every page of FilterLogEvents, following nextToken.
fn all_pages(store: &SqliteStore, input: Value) -> (Vec<String>, usize) {
    let mut messages = Vec::new();
    let mut pages = 0;
    let mut input = input;
    loop {
        let page = handle(store, "FilterLogEvents", input.clone()).unwrap();
        pages += 1;
        messages.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["message"].as_str().unwrap().to_owned()),
        );
        match page.get("nextToken") {
            Some(t) => input["nextToken"] = t.clone(),
            None => return (messages, pages),
        }
        assert!(pages < 1_000, "runaway paging");
    }
}

fn messages() -> Vec<String> {
    let mut m = Vec::new();
    for i in 0..40 {
        m.push(format!("START RequestId: r{i}"));
        m.push(format!(
            r#"{{"level": "{}", "n": {i}}}"#,
            if i % 3 == 0 { "ERROR" } else { "INFO" }
        ));
        m.push(format!("[ERROR] plain text line {i}"));
    }
    m
}

#[test]
fn filter_patterns_select_and_page_with_next_tokens() {
    let msgs = messages();
    let refs: Vec<&str> = msgs.iter().map(String::as_str).collect();
    let store = store_with(&refs);
    for (pattern, expected) in [
        (r#"{ $.level = "ERROR" }"#, 14),
        ("{ $.n >= 30 && $.level = INFO }", 6),
        ("ERROR -level", 40),
        ("?START ?plain", 80),
        (r"%^START\sRequestId:\sr\d$%", 10),
        ("[level = ERROR, ...]", 40),
        ("", 120),
    ] {
        let want: Vec<String> = msgs
            .iter()
            .filter(|m| FilterPattern::parse(pattern).unwrap().matches(m))
            .cloned()
            .collect();
        assert_eq!(want.len(), expected, "{pattern}");
        for limit in [1, 2, 7, 10_000] {
            let (got, pages) = all_pages(
                &store,
                json!({"logGroupName": GROUP, "filterPattern": pattern, "limit": limit}),
            );
            assert_eq!(got, want, "{pattern} limit {limit}");
            if limit == 10_000 {
                assert_eq!(pages, 1, "{pattern}: one page holds everything");
            }
        }
    }
}

#[test]
fn a_full_page_carries_a_token_and_the_last_page_none() {
    let store = store_with(&["x 1", "y", "x 2", "x 3"]);
    let page = handle(
        &store,
        "FilterLogEvents",
        json!({"logGroupName": GROUP, "filterPattern": "x", "limit": 2}),
    )
    .unwrap();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    let token = page["nextToken"].as_str().unwrap().to_owned();
    let page = handle(
        &store,
        "FilterLogEvents",
        json!({"logGroupName": GROUP, "filterPattern": "x", "limit": 2, "nextToken": token}),
    )
    .unwrap();
    assert_eq!(page["events"][0]["message"], "x 3");
    assert!(page.get("nextToken").is_none());
}

#[test]
fn scan_budget_returns_partial_pages_that_resume_exactly() {
    let mut msgs: Vec<String> = (0..50).map(|i| format!("noise {i}")).collect();
    msgs.push("needle one".into());
    msgs.extend((0..50).map(|i| format!("noise again {i}")));
    msgs.push("needle two".into());
    let refs: Vec<&str> = msgs.iter().map(String::as_str).collect();
    let store = store_with(&refs);
    // "noise" terms survive the substring pre-filter, so the budget is what stops a round.
    let pattern = FilterPattern::parse("%e\\s\\w+%").unwrap();
    let budget = ScanBudget {
        events: 10,
        ..SCAN_BUDGET
    };
    let mut q = LogQuery {
        group: GROUP.into(),
        limit: 100,
        ..Default::default()
    };
    let mut found = Vec::new();
    let mut calls = 0;
    loop {
        let (events, next) = filter_page(&store, q.clone(), &pattern, budget).unwrap();
        calls += 1;
        found.extend(events.into_iter().map(|e| e.message));
        match next {
            Some(id) => q.after_id = Some(id),
            None => break,
        }
    }
    let want: Vec<String> = msgs
        .iter()
        .filter(|m| pattern.matches(m))
        .cloned()
        .collect();
    assert_eq!(found, want);
    assert!(calls >= 2, "the budget split the scan ({calls} calls)");
}

#[test]
fn response_size_budget_splits_pages() {
    let big = "x".repeat(400);
    let store = store_with(&[&big, &big, &big, &big, &big]);
    let budget = ScanBudget {
        response_bytes: 1_000,
        ..SCAN_BUDGET
    };
    let q = LogQuery {
        group: GROUP.into(),
        limit: 100,
        ..Default::default()
    };
    for pattern in ["", "x"] {
        let pattern = FilterPattern::parse(pattern).unwrap();
        let (events, next) = filter_page(&store, q.clone(), &pattern, budget).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(next, Some(events[1].id));
    }
}

#[test]
fn invalid_patterns_are_invalid_parameter_exceptions() {
    let store = store_with(&["x"]);
    for (pattern, message) in [
        (
            "user@example.com",
            "Invalid character(s) in term 'user@example.com'",
        ),
        (
            "{ $.a = 1",
            "If a filter pattern starts with '{' it must end with '}'",
        ),
        ("{ $.a = }", "Invalid filter pattern"),
    ] {
        let e = handle(
            &store,
            "FilterLogEvents",
            json!({"logGroupName": GROUP, "filterPattern": pattern}),
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert_eq!(e.message, message);
    }
}

#[test]
fn retention_policies() {
    let store = store_with(&["x"]);
    let describe = |store: &SqliteStore| {
        handle(
            store,
            "DescribeLogGroups",
            json!({"logGroupNamePrefix": GROUP}),
        )
        .unwrap()["logGroups"][0]
            .clone()
    };
    assert!(describe(&store).get("retentionInDays").is_none());
    handle(
        &store,
        "PutRetentionPolicy",
        json!({"logGroupName": GROUP, "retentionInDays": 14}),
    )
    .unwrap();
    assert_eq!(describe(&store)["retentionInDays"], 14);

    for days in [0, 2, 730, 3654, -1] {
        let e = handle(
            &store,
            "PutRetentionPolicy",
            json!({"logGroupName": GROUP, "retentionInDays": days}),
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert_eq!(
            e.message,
            "Invalid retention value. Valid values are: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]"
        );
    }
    assert_eq!(
        describe(&store)["retentionInDays"],
        14,
        "unchanged by the failures"
    );

    handle(
        &store,
        "DeleteRetentionPolicy",
        json!({"logGroupName": GROUP}),
    )
    .unwrap();
    assert!(describe(&store).get("retentionInDays").is_none());

    for op in ["PutRetentionPolicy", "DeleteRetentionPolicy"] {
        let e = handle(
            &store,
            op,
            json!({"logGroupName": "/nope", "retentionInDays": 1}),
        )
        .unwrap_err();
        assert_eq!(e.code, "ResourceNotFoundException");
        assert_eq!(e.message, "The specified log group does not exist.");
    }
}
