use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{select_path, validate_path, InputError, InputTransformer, TransformContext};

/// The EC2 event of AWS' input transformation documentation.
fn ec2_event() -> Value {
    json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2015-11-11T21:29:54Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
        "detail": {"instance-id": "i-0123456789", "state": "RUNNING"}
    })
}

/// The event of LocalStack's AWS-validated transformer tests.
fn special_event() -> Value {
    json!({
        "version": "0",
        "id": "1",
        "detail-type": "core.update-account-command",
        "source": "core.update-account-command",
        "account": "111111111111",
        "time": "2024-05-01T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "command": "update-account",
            "payload": {"acc_id": "0a787ecb-4015", "sf_id": "baz"},
            "listsingle": ["HIGH"],
            "listmulti": ["ACTIVE", "INACTIVE"],
            "valid": true,
            "count": 42,
            "nothing": null,
            "quote": "say \"hi\""
        }
    })
}

const CTX: TransformContext<'static> = TransformContext {
    rule_arn: "arn:aws:events:us-east-2:123456789012:rule/example",
    rule_name: "example",
    ingestion_time: "2015-11-11T21:29:55Z",
};

fn paths(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ec2_paths() -> BTreeMap<String, String> {
    paths(&[
        ("timestamp", "$.time"),
        ("instance", "$.detail.instance-id"),
        ("state", "$.detail.state"),
        ("resource", "$.resources[0]"),
    ])
}

fn special_paths() -> BTreeMap<String, String> {
    paths(&[
        ("userId", "$.detail.payload.acc_id"),
        ("payload", "$.detail.payload"),
        ("systemstring", "$.detail.awsAccountId"),
        ("listsingle", "$.detail.listsingle"),
        ("listmulti", "$.detail.listmulti"),
        ("valid", "$.detail.valid"),
        ("count", "$.detail.count"),
        ("nothing", "$.detail.nothing"),
        ("quote", "$.detail.quote"),
    ])
}

#[track_caller]
fn render(
    map: BTreeMap<String, String>,
    template: &str,
    event: &Value,
) -> Result<String, InputError> {
    InputTransformer::new(map, template.to_owned())
        .unwrap_or_else(|e| panic!("{template} should be valid: {e}"))
        .render(event, &CTX)
}

#[track_caller]
fn assert_renders(map: BTreeMap<String, String>, template: &str, event: &Value, expected: &str) {
    assert_eq!(
        render(map, template, event).as_deref(),
        Ok(expected),
        "template {template}"
    );
}

#[test]
fn select_path_examples() {
    let event = special_event();
    assert_eq!(select_path(&event, "$"), Ok(Some(event.clone())));
    assert_eq!(
        select_path(&event, "$.detail").unwrap(),
        Some(event["detail"].clone())
    );
    assert_eq!(
        select_path(&event, "$.detail.payload"),
        Ok(Some(json!({"acc_id": "0a787ecb-4015", "sf_id": "baz"})))
    );
    assert_eq!(
        select_path(&event, "$.detail.payload.sf_id"),
        Ok(Some(json!("baz")))
    );
    assert_eq!(
        select_path(&event, "$.detail-type"),
        Ok(Some(json!("core.update-account-command")))
    );
    assert_eq!(
        select_path(&event, "$.detail.listmulti[1]"),
        Ok(Some(json!("INACTIVE")))
    );
    assert_eq!(
        select_path(&event, "$.detail.nothing"),
        Ok(Some(Value::Null))
    );
    assert_eq!(select_path(&event, "$.detail.missing"), Ok(None));
    assert_eq!(select_path(&event, "$.detail.listmulti[2]"), Ok(None));
    assert_eq!(select_path(&event, "$.detail.command.deeper"), Ok(None));
    assert_eq!(select_path(&event, "$.detail.payload[0]"), Ok(None));
    assert_eq!(
        select_path(&event, "$['detail']['payload'][\"sf_id\"]"),
        Ok(Some(json!("baz")))
    );
    assert_eq!(
        select_path(&json!({"a key": {"x.y": 1}}), "$['a key']['x.y']"),
        Ok(Some(json!(1)))
    );
    assert_eq!(select_path(&json!({"a/b": 1}), "$.a/b"), Ok(Some(json!(1))));
}

#[test]
fn wildcards_select_every_match() {
    let event = json!({"detail": {"items": [{"id": 1}, {"id": 2}, {"name": "x"}], "tags": {"b": 2, "a": 1}}});
    assert_eq!(
        select_path(&event, "$.detail.items[*].id"),
        Ok(Some(json!([1, 2])))
    );
    assert_eq!(
        select_path(&event, "$.detail.items.*.id"),
        Ok(Some(json!([1, 2])))
    );
    assert_eq!(
        select_path(&event, "$.detail.tags.*"),
        Ok(Some(json!([1, 2])))
    );
    assert_eq!(
        select_path(&event, "$.detail.missing[*]"),
        Ok(Some(json!([])))
    );
}

#[test]
fn invalid_paths() {
    for path in [
        "",
        "detail",
        "$detail",
        "$.",
        "$..detail",
        "$.detail.",
        "$.a[",
        "$.a[x]",
        "$.a[-1]",
        "$.a[]",
        "$ .a",
        "$.a b",
        "$.a]",
        "$.a*",
        "$['a]",
        "$[99999999999999999999999]",
    ] {
        assert!(
            matches!(
                select_path(&json!({}), path),
                Err(InputError::InvalidPath { .. })
            ),
            "{path:?} should be rejected"
        );
    }
    assert_eq!(validate_path("$.detail"), Ok(()));
    assert!(validate_path(&format!("$.{}", "a".repeat(255))).is_err());
    assert!(validate_path(&format!("$.{}", "a".repeat(254))).is_ok());
}

#[test]
fn docs_examples() {
    let event = ec2_event();
    assert_renders(
        ec2_paths(),
        r#""instance <instance> is in <state>""#,
        &event,
        r#""instance i-0123456789 is in RUNNING""#,
    );
    assert_renders(
        ec2_paths(),
        r#""instance \"<instance>\" is in <state>""#,
        &event,
        r#""instance \"i-0123456789\" is in RUNNING""#,
    );
    assert_renders(
        ec2_paths(),
        "{\n  \"instance\" : <instance>,\n  \"state\": <state>\n}",
        &event,
        "{\n  \"instance\" : \"i-0123456789\",\n  \"state\": \"RUNNING\"\n}",
    );
    assert_renders(
        ec2_paths(),
        r#"{"instance" : <instance>, "state": "<state>", "instanceStatus": "instance \"<instance>\" is in <state>"}"#,
        &event,
        r#"{"instance" : "i-0123456789", "state": "RUNNING", "instanceStatus": "instance \"i-0123456789\" is in RUNNING"}"#,
    );
    assert_renders(
        ec2_paths(),
        r#"{"instance" : <instance>, "state": [ 9, <state>, true ], "Transformed" : "Yes"}"#,
        &event,
        r#"{"instance" : "i-0123456789", "state": [ 9, "RUNNING", true ], "Transformed" : "Yes"}"#,
    );
    assert_renders(
        ec2_paths(),
        r#"{"timestamp": <timestamp>, "resource": "<resource>"}"#,
        &event,
        r#"{"timestamp": "2015-11-11T21:29:54Z", "resource": "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"}"#,
    );
    // The tutorial's plain string.
    assert_renders(
        paths(&[("detail-type", "$.detail-type")]),
        r#""This event was of <detail-type> type.""#,
        &json!({"detail-type": "customerCreated"}),
        r#""This event was of customerCreated type.""#,
    );
}

#[test]
fn predefined_variables() {
    let event = ec2_event();
    assert_renders(
        BTreeMap::new(),
        r#""<aws.events.rule-name> triggered""#,
        &event,
        r#""example triggered""#,
    );
    assert_renders(
        BTreeMap::new(),
        r#""Message containing all pre defined variables <aws.events.rule-arn> <aws.events.rule-name> <aws.events.event.ingestion-time>""#,
        &event,
        r#""Message containing all pre defined variables arn:aws:events:us-east-2:123456789012:rule/example example 2015-11-11T21:29:55Z""#,
    );
    let rendered = render(
        ec2_paths(),
        r#"{"instance": <instance>, "ruleArn": <aws.events.rule-arn>, "ruleName": <aws.events.rule-name>,
            "originalEvent": <aws.events.event>, "originalEventJson": <aws.events.event.json>}"#,
        &event,
    )
    .unwrap();
    let rendered: Value = serde_json::from_str(&rendered).unwrap();
    assert_eq!(rendered["ruleArn"], json!(CTX.rule_arn));
    assert_eq!(rendered["ruleName"], json!("example"));
    assert_eq!(rendered["originalEventJson"], event);
    // As AWS delivers it: no detail, detailType, and the ingestion time.
    assert_eq!(
        rendered["originalEvent"],
        json!({"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
               "detailType": "EC2 Instance State-change Notification", "source": "aws.ec2",
               "account": "123456789012", "time": "2015-11-11T21:29:55Z", "region": "us-east-1",
               "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"]})
    );
}

#[test]
fn values_outside_and_inside_strings_as_aws_renders_them() {
    let event = special_event();
    let cases = [
        (
            r#"{"method": "PUT", "path": "users-service/users/<userId>", "bod": <payload>}"#,
            r#"{"method": "PUT", "path": "users-service/users/0a787ecb-4015", "bod": {"acc_id":"0a787ecb-4015","sf_id":"baz"}}"#,
        ),
        (
            r#""Payload of <payload> with path users-service/users/<userId> and <userId>""#,
            r#""Payload of {acc_id:0a787ecb-4015,sf_id:baz} with path users-service/users/0a787ecb-4015 and 0a787ecb-4015""#,
        ),
        (r#"{"id" : <userId>}"#, r#"{"id" : "0a787ecb-4015"}"#),
        (r#"{"id" : "<userId>"}"#, r#"{"id" : "0a787ecb-4015"}"#),
        (
            r#"{"method": "PUT", "path": "users-service/users/<userId>", "bod": [<userId>, "hardcoded"]}"#,
            r#"{"method": "PUT", "path": "users-service/users/0a787ecb-4015", "bod": ["0a787ecb-4015", "hardcoded"]}"#,
        ),
        (
            r#"{"nested": {"level1": {"level2": {"level3": "users-service/users/<userId>"} } }, "bod": "<userId>"}"#,
            r#"{"nested": {"level1": {"level2": {"level3": "users-service/users/0a787ecb-4015"} } }, "bod": "0a787ecb-4015"}"#,
        ),
        (
            r#""<listsingle> single list item""#,
            r#""[HIGH] single list item""#,
        ),
        (
            r#""<listmulti> multiple list items""#,
            r#""[ACTIVE,INACTIVE] multiple list items""#,
        ),
        (
            r#"{"singlelistitem": <listsingle>}"#,
            r#"{"singlelistitem": ["HIGH"]}"#,
        ),
        (
            r#""<listsingle> single list item <listmulti> multiple list items <systemstring> system account id <payload> payload <userId> user id""#,
            r#""[HIGH] single list item [ACTIVE,INACTIVE] multiple list items  system account id {acc_id:0a787ecb-4015,sf_id:baz} payload 0a787ecb-4015 user id""#,
        ),
        (
            r#"{"multi_replacement": "users/<userId>/second/<userId>"}"#,
            r#"{"multi_replacement": "users/0a787ecb-4015/second/0a787ecb-4015"}"#,
        ),
        (r#""Command is <valid>!""#, r#""Command is true!""#),
        (
            r#"{"valid": <valid>, "count": <count>, "nothing": <nothing>}"#,
            r#"{"valid": true, "count": 42, "nothing": null}"#,
        ),
        (
            r#"{"text": "<valid> <count> <nothing>"}"#,
            r#"{"text": "true 42 null"}"#,
        ),
        (
            r#""{[/Check with special starting characters for event of <userId> type""#,
            r#""{[/Check with special starting characters for event of 0a787ecb-4015 type""#,
        ),
        // Text that is not a placeholder stays as it is.
        (
            r#""a < b, <not a placeholder>, <> and <userId>""#,
            r#""a < b, <not a placeholder>, <> and 0a787ecb-4015""#,
        ),
        // A template that is neither JSON nor a JSON string inserts every value raw.
        (
            r#"<userId> is in state "<valid>""#,
            r#"0a787ecb-4015 is in state "true""#,
        ),
        (r#"quote: <quote>"#, r#"quote: say "hi""#),
    ];
    for (template, expected) in cases {
        assert_renders(special_paths(), template, &event, expected);
    }
}

#[test]
fn missing_values_render_as_empty_strings() {
    let event = special_event();
    let map = paths(&[
        ("detailType", "$.detail-type"),
        ("command", "$.detail.notinmessage"),
    ]);
    assert_renders(
        map.clone(),
        r#"{"detailType": <detailType>, "command": <command>}"#,
        &event,
        r#"{"detailType": "core.update-account-command", "command": ""}"#,
    );
    assert_renders(
        map.clone(),
        r#""Event of <detailType> type, info extracted from detail <command>""#,
        &event,
        r#""Event of core.update-account-command type, info extracted from detail ""#,
    );
    assert_renders(map, r#"[<command>, "<command>"]"#, &event, r#"["", ""]"#);
}

#[test]
fn invalid_json_output_is_an_error() {
    let event = special_event();
    // AWS drops these events: objects and arrays cannot sit inside a string of a JSON template.
    for template in [
        r#"{"payload": "<payload>"}"#,
        r#"{"singlelistitem": "<listsingle>"}"#,
        r#"{"not_valid": "users-service/users/<payload>", "bod": <payload>}"#,
        r#"{"event": "<aws.events.event.json>"}"#,
    ] {
        assert!(
            matches!(
                render(special_paths(), template, &event),
                Err(InputError::InvalidOutput(_))
            ),
            "{template}"
        );
    }
    // Values are not escaped, so a quote inside a string breaks the JSON.
    assert!(matches!(
        render(special_paths(), r#"{"said": "<quote>"}"#, &event),
        Err(InputError::InvalidOutput(_))
    ));
    assert_renders(
        special_paths(),
        r#"{"said": <quote>}"#,
        &event,
        r#"{"said": "say \"hi\""}"#,
    );
    // A broken JSON template fails at render time too.
    assert!(matches!(
        render(special_paths(), r#"{"a": <userId>"#, &event),
        Err(InputError::InvalidOutput(_))
    ));
}

#[test]
fn validation() {
    let new = |map: BTreeMap<String, String>, template: &str| {
        InputTransformer::new(map, template.to_owned())
    };
    let too_many: BTreeMap<String, String> = (0..101)
        .map(|i| (format!("v{i}"), "$.detail".to_owned()))
        .collect();
    assert_eq!(new(too_many, "\"x\""), Err(InputError::TooManyPaths(101)));
    let hundred: BTreeMap<String, String> = (0..100)
        .map(|i| (format!("v{i}"), "$.detail".to_owned()))
        .collect();
    assert!(new(hundred, "\"<v99>\"").is_ok());

    for key in ["aws.events.rule-arn", "aws.x", "AWS.x", "Aws.other"] {
        assert_eq!(
            new(paths(&[(key, "$.a")]), "\"x\""),
            Err(InputError::ReservedKey(key.to_owned()))
        );
    }
    let long_key = "k".repeat(257);
    for key in ["", "bad key", "dotted.key", "ünï", long_key.as_str()] {
        assert_eq!(
            new(paths(&[(key, "$.a")]), "\"x\""),
            Err(InputError::InvalidKey(key.to_owned()))
        );
    }
    assert!(new(paths(&[("Good_key-1", "$.a")]), "\"<Good_key-1>\"").is_ok());
    assert!(matches!(
        new(paths(&[("k", "detail")]), "\"x\""),
        Err(InputError::InvalidPath { .. })
    ));
    let long_path = format!("$.{}", "a".repeat(255));
    assert!(matches!(
        new(paths(&[("k", long_path.as_str())]), "\"x\""),
        Err(InputError::InvalidPath { .. })
    ));

    assert_eq!(new(BTreeMap::new(), ""), Err(InputError::TemplateLength));
    assert_eq!(
        new(BTreeMap::new(), &"x".repeat(8193)),
        Err(InputError::TemplateLength)
    );
    assert!(new(BTreeMap::new(), &"x".repeat(8192)).is_ok());

    let error = new(
        ec2_paths(),
        r#""Event of <instance> type, with not defined key <notdefinedkey>""#,
    )
    .unwrap_err();
    assert_eq!(
        error,
        InputError::InvalidPlaceholder("notdefinedkey".to_owned())
    );
    assert_eq!(
        error.to_string(),
        "InputTemplate contains invalid placeholder notdefinedkey."
    );
    assert_eq!(
        new(ec2_paths(), r#"{<instance>: 1}"#),
        Err(InputError::PlaceholderAsKey("instance".to_owned()))
    );
    assert_eq!(
        new(ec2_paths(), r#"{"a": 1, "<state>" : 2}"#),
        Err(InputError::PlaceholderAsKey("state".to_owned()))
    );
    // In a string template a colon is just text.
    assert!(new(ec2_paths(), r#""<instance>: 1""#).is_ok());
    assert!(new(ec2_paths(), r#"{"x": "<instance>: 1"}"#).is_ok());

    let transformer = new(ec2_paths(), r#""<state>""#).unwrap();
    assert_eq!(transformer.input_paths_map(), &ec2_paths());
    assert_eq!(transformer.input_template(), r#""<state>""#);
}
