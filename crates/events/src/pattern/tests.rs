use serde_json::{json, Value};

use super::Pattern;

/// An EventBridge envelope around `detail`, like the events of AWS' documentation.
fn event(detail: Value) -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "111122223333",
        "time": "2017-12-22T18:43:48Z",
        "region": "us-west-1",
        "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
        "detail": detail
    })
}

fn pattern(text: &str) -> Pattern {
    Pattern::parse(text).unwrap_or_else(|e| panic!("{text} should parse: {e}"))
}

#[track_caller]
fn assert_matches(text: &str, event: &Value) {
    assert!(pattern(text).matches(event), "{text} should match {event}");
}

#[track_caller]
fn assert_no_match(text: &str, event: &Value) {
    assert!(
        !pattern(text).matches(event),
        "{text} should not match {event}"
    );
}

#[track_caller]
fn assert_invalid(text: &str, reason: &str) {
    match Pattern::parse(text) {
        Ok(_) => panic!("{text} should be rejected"),
        Err(e) => assert_eq!(e.reason(), reason, "for {text}"),
    }
}

#[test]
fn docs_ec2_termination_example() {
    let terminated = event(json!({"instance-id": "i-1234567890abcdef0", "state": "terminated"}));
    let p = r#"{"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
                "detail": {"state": ["terminated"]}}"#;
    assert_matches(p, &terminated);
    assert_no_match(p, &event(json!({"state": "running"})));
    assert_no_match(
        p,
        &json!({"source": "aws.ec2", "detail": {"state": "terminated"}}),
    );
    // Matching is character by character: no case folding, and the pattern needs the nesting.
    assert_no_match(r#"{"source": ["AWS.EC2"]}"#, &terminated);
    assert_no_match(r#"{"state": ["terminated"]}"#, &terminated);
    assert_no_match(r#"{"SOURCE": ["aws.ec2"]}"#, &terminated);
}

#[test]
fn values_in_a_leaf_are_alternatives() {
    let p = r#"{"source": ["aws.ec2", "aws.fargate"]}"#;
    assert_matches(p, &event(json!({})));
    assert_matches(p, &json!({"source": "aws.fargate"}));
    assert_no_match(p, &json!({"source": "aws.s3"}));
}

#[test]
fn null_and_empty_string_are_distinct() {
    let e = event(json!({"eventVersion": "", "responseElements": null}));
    assert_matches(r#"{"detail": {"eventVersion": [""]}}"#, &e);
    assert_matches(r#"{"detail": {"responseElements": [null]}}"#, &e);
    assert_no_match(r#"{"detail": {"responseElements": [""]}}"#, &e);
    assert_no_match(r#"{"detail": {"eventVersion": [null]}}"#, &e);
    assert_no_match(
        r#"{"detail": {"responseElements": [null]}}"#,
        &event(json!({"responseElements": "null"})),
    );
}

#[test]
fn booleans_and_numbers_match_their_json_values() {
    let e = event(
        json!({"flag": false, "score": 1, "count": 2, "number": 300.0, "account": 123456789012u64}),
    );
    assert_matches(r#"{"detail": {"flag": [false]}}"#, &e);
    assert_no_match(r#"{"detail": {"flag": [true]}}"#, &e);
    assert_no_match(r#"{"detail": {"flag": ["false"]}}"#, &e);
    assert_matches(r#"{"detail": {"score": [1], "count": [2]}}"#, &e);
    // Ruler compares numbers numerically, so 300 matches 300.0 (AWS-validated).
    assert_matches(r#"{"detail": {"number": [300]}}"#, &e);
    assert_matches(r#"{"detail": {"number": [3.0e2]}}"#, &e);
    assert_no_match(r#"{"detail": {"number": ["300"]}}"#, &e);
    assert_matches(r#"{"detail": {"account": [123456789012]}}"#, &e);
    assert_no_match(r#"{"detail": {"account": [123456789013]}}"#, &e);
}

#[test]
fn docs_macie_value_matching() {
    let e = json!({"source": "aws.macie", "detail-type": "Macie Finding",
        "detail": {"severity": {"score": 1, "description": "Low"}, "count": 2}});
    let p = r#"{"source": ["aws.macie"], "detail-type": ["Macie Finding"],
                "detail": {"severity": {"score": [1]}, "count": [2]}}"#;
    assert_matches(p, &e);
    assert_no_match(
        p,
        &json!({"source": "aws.macie", "detail-type": "Macie Finding",
        "detail": {"severity": {"score": 3}, "count": 2}}),
    );
}

#[test]
fn docs_arrays_match_when_they_intersect() {
    let p = r#"{"resources": [
        "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
        "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
        "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]}"#;
    let asg = "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:autoScalingGroupName/ASGTerminate";
    assert_matches(
        p,
        &json!({"resources": [asg, "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]}),
    );
    assert_no_match(p, &json!({"resources": [asg]}));
    assert_no_match(r#"{"resources": [null]}"#, &json!({"resources": []}));
    // Nested arrays are crushed.
    assert_matches(r#"{"a": [3]}"#, &json!({"a": [[1, 2], [[3]]]}));
}

#[test]
fn objects_in_arrays_match_element_by_element() {
    // Ruler's README: fields in different elements of the same array never match together.
    let e = json!({"employees": [
        {"firstName": "John", "lastName": "Doe"},
        {"firstName": "Anna", "lastName": "Smith"},
        {"firstName": "Peter", "lastName": "Jones"}]});
    assert_matches(r#"{"employees": {"firstName": ["Anna"]}}"#, &e);
    assert_matches(
        r#"{"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}"#,
        &e,
    );
    assert_no_match(
        r#"{"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}"#,
        &e,
    );
    let nested = json!({"employees": [
        [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}],
        [{"firstName": "Peter", "lastName": "Jones"}]]});
    assert_matches(
        r#"{"employees": {"firstName": ["Peter"], "lastName": ["Jones"]}}"#,
        &nested,
    );
    assert_no_match(
        r#"{"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}"#,
        &nested,
    );
    // AWS-validated: exists inside a list of objects.
    let automations = event(
        json!({"automations": [{"key1": "value1"}, {"id": "match-does-exist"}, {"key2": "value2"}]}),
    );
    assert_matches(
        r#"{"detail": {"automations": {"id": [{"exists": true}]}}}"#,
        &automations,
    );
}

#[test]
fn prefix() {
    let e = json!({"time": "2017-10-02T18:43:48Z", "n": 2017});
    assert_matches(r#"{"time": [{"prefix": "2017-10-02"}]}"#, &e);
    assert_no_match(r#"{"time": [{"prefix": "2017-10-03"}]}"#, &e);
    assert_matches(r#"{"time": [{"prefix": ""}]}"#, &e);
    assert_no_match(r#"{"n": [{"prefix": "2017"}]}"#, &e);
    assert_no_match(r#"{"missing": [{"prefix": ""}]}"#, &e);
    let service = event(json!({"service": "EvEnTbRiDgE"}));
    assert_matches(
        r#"{"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}}"#,
        &service,
    );
    assert_no_match(
        r#"{"detail": {"service": [{"prefix": {"equals-ignore-case": "EventX"}}]}}"#,
        &service,
    );
}

#[test]
fn suffix() {
    let e = json!({"FileName": "image.png", "Upper": "IMAGE.PNG"});
    assert_matches(r#"{"FileName": [{"suffix": ".png"}]}"#, &e);
    assert_no_match(r#"{"FileName": [{"suffix": ".PNG"}]}"#, &e);
    assert_matches(r#"{"FileName": [{"suffix": ""}]}"#, &e);
    assert_matches(
        r#"{"Upper": [{"suffix": {"equals-ignore-case": ".png"}}]}"#,
        &e,
    );
    assert_matches(
        r#"{"Upper": [{"suffix": {"equals-ignore-case": "tbridge"}}]}"#,
        &json!({"Upper": "EVENTBRIDGE"}),
    );
    assert_no_match(
        r#"{"Upper": [{"suffix": {"equals-ignore-case": ".jpg"}}]}"#,
        &e,
    );
}

#[test]
fn equals_ignore_case() {
    let p =
        r#"{"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]}"#;
    assert_matches(p, &event(json!({})));
    // The docs' second example event holds the value in an array.
    assert_matches(
        p,
        &json!({"detail-type": ["EC2 Instance State-change Notification"]}),
    );
    assert_no_match(
        r#"{"detail-type": [{"equals-ignore-case": "I do not match"}]}"#,
        &event(json!({})),
    );
    assert_matches(r#"{"v": [{"equals-ignore-case": ""}]}"#, &json!({"v": ""}));
    assert_no_match(
        r#"{"v": [{"equals-ignore-case": ""}]}"#,
        &json!({"v": "test-value"}),
    );
    assert_matches(
        r#"{"v": [{"equals-ignore-case": "ÉTÉ"}]}"#,
        &json!({"v": "été"}),
    );
}

#[test]
fn anything_but_strings_and_numbers() {
    let but_init = r#"{"detail": {"state": [{"anything-but": "initializing"}]}}"#;
    assert_matches(but_init, &event(json!({"state": "pending"})));
    assert_no_match(but_init, &event(json!({"state": "initializing"})));
    // AWS-validated: null and other types pass, a missing field does not.
    assert_matches(but_init, &event(json!({"state": null})));
    assert_matches(but_init, &event(json!({"state": 7})));
    assert_no_match(but_init, &event(json!({})));

    let but_list = r#"{"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}"#;
    assert_matches(but_list, &event(json!({"state": "pending"})));
    assert_no_match(but_list, &event(json!({"state": "stopped"})));
    assert_no_match(but_list, &event(json!({"state": "overloaded"})));

    let but_123 = r#"{"detail": {"x-limit": [{"anything-but": 123}]}}"#;
    assert_matches(but_123, &event(json!({"x-limit": 789})));
    assert_no_match(but_123, &event(json!({"x-limit": 123})));
    assert_no_match(but_123, &event(json!({"x-limit": 123.0})));
    assert_matches(
        r#"{"detail": {"x-limit": [{"anything-but": 0}]}}"#,
        &event(json!({"x-limit": 789})),
    );

    let but_numbers = r#"{"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}"#;
    assert_matches(but_numbers, &event(json!({"x-limit": 999})));
    assert_no_match(but_numbers, &event(json!({"x-limit": 100})));
    // Like SNS' documented example: an array matches if any element is not excluded.
    assert_matches(but_numbers, &event(json!({"x-limit": [100, 50]})));
    assert_no_match(but_numbers, &event(json!({"x-limit": [100, 200]})));
}

#[test]
fn anything_but_prefix_suffix_ignore_case_and_wildcard() {
    let cases = [
        (
            r#"{"anything-but": {"prefix": "init"}}"#,
            json!("post-init"),
            true,
        ),
        (
            r#"{"anything-but": {"prefix": "init"}}"#,
            json!("init-prefix"),
            false,
        ),
        (r#"{"anything-but": {"prefix": "init"}}"#, json!(12), true),
        (r#"{"anything-but": {"prefix": "init"}}"#, json!(null), true),
        (
            r#"{"anything-but": {"prefix": ["init", "test"]}}"#,
            json!("post-init"),
            true,
        ),
        (
            r#"{"anything-but": {"prefix": ["init", "post"]}}"#,
            json!("post-init"),
            false,
        ),
        (
            r#"{"anything-but": {"prefix": "us-"}}"#,
            json!("eu-west-1"),
            true,
        ),
        (
            r#"{"anything-but": {"suffix": ".txt"}}"#,
            json!("file.txt.bak"),
            true,
        ),
        (
            r#"{"anything-but": {"suffix": ".txt"}}"#,
            json!("file.txt"),
            false,
        ),
        (
            r#"{"anything-but": {"suffix": [".txt", ".jpg"]}}"#,
            json!("file.jpg"),
            false,
        ),
        (
            r#"{"anything-but": {"suffix": [".txt", ".jpg"]}}"#,
            json!(null),
            true,
        ),
        (
            r#"{"anything-but": {"equals-ignore-case": "initializing"}}"#,
            json!("pending"),
            true,
        ),
        (
            r#"{"anything-but": {"equals-ignore-case": "initializing"}}"#,
            json!("INITIALIZING"),
            false,
        ),
        (
            r#"{"anything-but": {"equals-ignore-case": ["initializing", "stopped"]}}"#,
            json!("Stopped"),
            false,
        ),
        (
            r#"{"anything-but": {"equals-ignore-case": ["initializing", "stopped"]}}"#,
            json!(null),
            true,
        ),
        (
            r#"{"anything-but": {"wildcard": "*/lib/*"}}"#,
            json!("/usr/bin/app"),
            true,
        ),
        (
            r#"{"anything-but": {"wildcard": "*/lib/*"}}"#,
            json!("/usr/lib/app"),
            false,
        ),
        (
            r#"{"anything-but": {"wildcard": "*/init/*"}}"#,
            json!("dir/init/file"),
            false,
        ),
        (
            r#"{"anything-but": {"wildcard": ""}}"#,
            json!("dir/init/file"),
            true,
        ),
        (
            r#"{"anything-but": {"wildcard": "*/dir/*"}}"#,
            json!(123),
            true,
        ),
        (
            r#"{"anything-but": {"wildcard": ["*/init/*", "*/dir/*"]}}"#,
            json!("dir/post/dir"),
            true,
        ),
        (
            r#"{"anything-but": {"wildcard": ["*/init/*", "*/dir/*"]}}"#,
            json!("dir/init/dir"),
            false,
        ),
    ];
    for (expression, value, expected) in cases {
        let p = pattern(&format!(r#"{{"detail": {{"f": [{expression}]}}}}"#));
        assert_eq!(
            p.matches(&event(json!({"f": value}))),
            expected,
            "{expression} vs {value}"
        );
        // No form of anything-but matches a missing field.
        assert!(!p.matches(&event(json!({}))), "{expression} vs missing");
    }
}

#[test]
fn numeric() {
    let p = r#"{"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}],
                           "d-count": [{"numeric": ["<", 10]}],
                           "x-limit": [{"numeric": ["=", 3.018e2]}]}}"#;
    assert_matches(
        p,
        &event(json!({"c-count": 3, "d-count": 9, "x-limit": 301.8})),
    );
    assert_matches(
        p,
        &event(json!({"c-count": 5, "d-count": -4, "x-limit": 3.018e2})),
    );
    assert_no_match(
        p,
        &event(json!({"c-count": 42, "d-count": 9, "x-limit": 301.8})),
    );
    assert_no_match(
        p,
        &event(json!({"c-count": 0, "d-count": 9, "x-limit": 301.8})),
    );
    assert_no_match(
        p,
        &event(json!({"c-count": 3, "d-count": 10, "x-limit": 301.8})),
    );
    assert_no_match(
        p,
        &event(json!({"c-count": 3, "d-count": 9, "x-limit": 301.9})),
    );

    let ranges = [
        (r#"[">", 100]"#, json!(101.0), true),
        (r#"[">", 100]"#, json!(100), false),
        (r#"[">=", 100]"#, json!(100), true),
        (r#"["<", 0]"#, json!(-0.5), true),
        (r#"["<=", 150]"#, json!(150), true),
        (r#"["<", 150]"#, json!(150), false),
        (r#"[">=", 10, "<", 20]"#, json!(20), false),
        (r#"[">", 10, "<=", 20]"#, json!(20), true),
        (r#"["=", 100]"#, json!(1e2), true),
        (r#"[">", 100]"#, json!("300"), false),
        (r#"[">", 100]"#, json!(null), false),
        (r#"[">", 100]"#, json!([1, 200]), true),
    ];
    for (range, value, expected) in ranges {
        let p = pattern(&format!(r#"{{"n": [{{"numeric": {range}}}]}}"#));
        assert_eq!(
            p.matches(&json!({"n": value})),
            expected,
            "{range} vs {value}"
        );
    }
}

#[test]
fn exists() {
    let p = r#"{"detail": {"state": [{"exists": true}]}}"#;
    assert_matches(
        p,
        &event(json!({"instance-id": "i-abcd1111", "state": "pending"})),
    );
    assert_matches(p, &event(json!({"state": null})));
    assert_no_match(p, &event(json!({"c-count": {"c1": 100}})));
    // Only leaves exist: an object or an empty array is not a value.
    assert_no_match(p, &event(json!({"state": {"s": 1}})));
    assert_no_match(
        r#"{"resources": [{"exists": true}]}"#,
        &json!({"resources": []}),
    );

    let absent = r#"{"detail": {"c-count": [{"exists": false}]}}"#;
    assert_matches(
        absent,
        &event(json!({"state": ["initializing", "running"]})),
    );
    assert_matches(absent, &event(json!({"c-count": {"c1": 100}})));
    assert_no_match(absent, &event(json!({"c-count": 5})));
    // A missing parent means a missing leaf (AWS-validated, including a misspelt parent).
    assert_matches(
        r#"{"detail": {"level1": {"level2:": {"level3": {"level4": [{"exists": false}]}}}}}"#,
        &event(json!({"level1": {"level2": "l2 value"}})),
    );
    assert_no_match(
        r#"{"detail": {"level1": {"level2": {"level3": {"level4": [{"exists": false}]}}}}}"#,
        &event(json!({"level1": {"level2": {"level3": {"level4": "l4 value"}}}})),
    );
    let dynamodb = json!({"dynamodb": {"id": {"S": "test1234"}, "presentKey": {"S": "test123"}}});
    assert_matches(
        r#"{"dynamodb": {"presentKey": {"S": [{"exists": true}]}}}"#,
        &dynamodb,
    );
    assert_no_match(
        r#"{"dynamodb": {"presentKey": [{"exists": true}]}}"#,
        &dynamodb,
    );
}

#[test]
fn exists_false_holds_across_a_whole_array() {
    let p = r#"{"items": {"discount": [{"exists": false}]}}"#;
    assert_matches(p, &json!({"items": [{"price": 1}, {"price": 2}]}));
    assert_matches(p, &json!({"items": []}));
    assert_matches(p, &json!({"items": [1, 2]}));
    assert_no_match(
        p,
        &json!({"items": [{"price": 1}, {"price": 2, "discount": 5}]}),
    );
    // With a positive field, one element must satisfy it while no element has the absent one.
    let mixed = r#"{"items": {"discount": [{"exists": false}], "price": [2]}}"#;
    assert_matches(mixed, &json!({"items": [{"price": 1}, {"price": 2}]}));
    assert_no_match(
        mixed,
        &json!({"items": [{"price": 1, "discount": 1}, {"price": 2}]}),
    );
}

#[test]
fn a_leaf_may_mix_matchers() {
    // AWS-validated DynamoDB stream cases.
    let p = r#"{"dynamodb": {"NewImage": {"homemade": {"S": [{"anything-but": ["roses"]}, {"exists": false}]}}}}"#;
    assert_matches(
        p,
        &json!({"dynamodb": {"NewImage": {"homemade": {"S": "ABCD", "N": "1234"}}}}),
    );
    assert_matches(
        p,
        &json!({"dynamodb": {"NewImage": {"homemade": {"N": "789"}}}}),
    );
    assert_matches(
        p,
        &json!({"dynamodb": {"NewImage": {"purchased": {"N": "789"}}}}),
    );
    assert_no_match(
        p,
        &json!({"dynamodb": {"NewImage": {"homemade": {"S": "roses"}}}}),
    );
    let numeric_or = r#"{"dynamodb": {"NewImage": {"numericFilter": {"N": [{"numeric": [">", 100]}, {"anything-but": "101"}]}}}}"#;
    assert_matches(
        numeric_or,
        &json!({"dynamodb": {"NewImage": {"numericFilter": {"N": "42"}}}}),
    );
    assert_no_match(
        numeric_or,
        &json!({"dynamodb": {"NewImage": {"numericFilter": {"N": "101"}}}}),
    );
    assert_matches(
        r#"{"my_key": [{"exists": true}, {"prefix": "IGNORED"}, {"suffix": "IGNORED"}]}"#,
        &json!({"my_key": "my-value"}),
    );
}

#[test]
fn wildcard() {
    let cases = [
        ("*.png", "image.png", true),
        ("*.png", "image.jpg", false),
        ("*Title*", "A Title here", true),
        ("*Title*", "Title", true),
        ("Simple*Service", "Simple Notification Service", true),
        ("Simple*Service", "SimpleService", true),
        ("Simple*Service", "Simple Service Plan", false),
        ("dir/*.png", "dir/a/b.png", true),
        (
            "/Users/*/doc.txt",
            "/Users/ls_user/dir/dir/dir/dir/dir/doc.txt",
            true,
        ),
        (
            "/Users/*/doc.txt",
            "/Users/ls_user/dir/dir/notmatchingdoc.txt",
            false,
        ),
        (
            "/Users/*/dir/dir/dir/dir/dir/doc.txt",
            "/Users/ls_user/dir/dir/dir/dir/dir/doc.txt",
            true,
        ),
        (
            "/Users/*/dir/dir/dir/dir/dir/doc.txt",
            "/Users/ls_user/dir/dir/dir/dir/otherdir/doc.txt",
            false,
        ),
        (
            "arn:aws:events:us-east-1:*:event-bus/*",
            "arn:aws:events:us-east-1:123456789012:event-bus/myEventBus",
            true,
        ),
        ("a*b*c", "abbbbc", true),
        ("a*b*c", "acb", false),
        ("", "", true),
        ("", "x", false),
        ("exact", "exact", true),
        (r"\*star", "*star", true),
        (r"\*star", "xstar", false),
        (r"back\\slash", r"back\slash", true),
    ];
    for (wildcard, value, expected) in cases {
        let p = pattern(&serde_json::to_string(&json!({"f": [{"wildcard": wildcard}]})).unwrap());
        assert_eq!(
            p.matches(&json!({"f": value})),
            expected,
            "{wildcard} vs {value}"
        );
    }
    assert_no_match(r#"{"f": [{"wildcard": "*"}]}"#, &json!({"f": 5}));
    assert_matches(r#"{"f": [{"wildcard": "*"}]}"#, &json!({"f": ""}));
}

#[test]
fn cidr() {
    let v4 = r#"{"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}"#;
    assert_matches(v4, &event(json!({"sourceIPAddress": "10.0.0.255"})));
    assert_matches(v4, &event(json!({"sourceIPAddress": "10.0.0.0"})));
    assert_no_match(v4, &event(json!({"sourceIPAddress": "10.0.1.0"})));
    assert_no_match(v4, &event(json!({"sourceIPAddress": "10.0.0.256"})));
    assert_no_match(v4, &event(json!({"sourceIPAddress": 123})));
    assert_no_match(v4, &event(json!({"sourceIPAddress": "::1"})));
    assert_matches(
        r#"{"ip": [{"cidr": "0.0.0.0/0"}]}"#,
        &json!({"ip": "203.0.113.9"}),
    );
    let v6 = r#"{"detail": {"sourceIPAddress": [{"cidr": "2001:db8:1234:1a00::/64"}]}}"#;
    assert_matches(
        v6,
        &event(json!({"sourceIPAddress": "2001:0db8:1234:1a00:0000:0000:0000:0000"})),
    );
    assert_matches(
        v6,
        &event(json!({"sourceIPAddress": "2001:db8:1234:1a00:ffff::1"})),
    );
    assert_no_match(
        v6,
        &event(json!({"sourceIPAddress": "2001:0db8:123f:1a01:0000:0000:0000:0000"})),
    );
    // Exact IP strings compare as addresses, as Ruler does.
    assert_matches(
        r#"{"ip": ["2001:db8::1"]}"#,
        &json!({"ip": "2001:0db8:0:0:0:0:0:1"}),
    );
    assert_no_match(r#"{"ip": ["2001:db8::1"]}"#, &json!({"ip": "2001:db8::2"}));
}

#[test]
fn or_across_fields() {
    let p = r#"{"detail": {"$or": [
        {"c-count": [{"numeric": [">", 0, "<=", 5]}]},
        {"d-count": [{"numeric": ["<", 10]}]},
        {"x-limit": [{"numeric": ["=", 3.018e2]}]}]}}"#;
    assert_matches(
        p,
        &event(json!({"c-count": 0, "d-count": 0, "x-limit": 901.8})),
    );
    assert_matches(
        p,
        &event(json!({"c-count": 3, "d-count": 10, "x-limit": 0})),
    );
    assert_matches(
        p,
        &event(json!({"c-count": 0, "d-count": 10, "x-limit": 301.8})),
    );
    assert_no_match(
        p,
        &event(json!({"c-count": 0, "d-count": 10, "x-limit": 901.8})),
    );
}

#[test]
fn or_examples_from_ruler() {
    // source AND (metricName OR (metricType AND namespace AND (metricId OR spaceId)) OR scope)
    let p = r#"{"source": ["aws.cloudwatch"], "$or": [
        {"metricName": ["CPUUtilization", "ReadLatency"]},
        {"metricType": ["MetricType"], "namespace": ["AWS/EC2", "AWS/ES"],
         "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]},
        {"scope": ["Service"]}]}"#;
    let cw = |extra: Value| {
        let mut e = json!({"source": "aws.cloudwatch"});
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    assert_matches(p, &cw(json!({"metricName": "ReadLatency"})));
    assert_matches(p, &cw(json!({"scope": "Service"})));
    assert_matches(
        p,
        &cw(json!({"metricType": "MetricType", "namespace": "AWS/ES", "spaceId": 1000})),
    );
    assert_no_match(
        p,
        &cw(json!({"metricType": "MetricType", "namespace": "AWS/ES"})),
    );
    assert_no_match(p, &cw(json!({"metricType": "MetricType", "spaceId": 1000})));
    assert_no_match(p, &json!({"source": "aws.ec2", "scope": "Service"}));

    // Parallel $or at two levels: both must hold.
    let parallel = r#"{"$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
                       "detail": {"$or": [{"source": ["aws.cloudwatch"]}, {"detail-type": ["CloudWatch Alarm State Change"]}]}}"#;
    assert_matches(
        parallel,
        &json!({"namespace": "AWS/EC2", "detail": {"detail-type": "CloudWatch Alarm State Change"}}),
    );
    assert_no_match(
        parallel,
        &json!({"namespace": "AWS/EC2", "detail": {"source": "aws.ec2"}}),
    );
}

#[test]
fn complex_doc_example() {
    let p = r#"{"time": [{"prefix": "2017-10-02"}],
                "detail": {"state": [{"anything-but": "initializing"}],
                           "c-count": [{"numeric": [">", 0, "<=", 5]}],
                           "d-count": [{"numeric": ["<", 10]}],
                           "x-limit": [{"anything-but": [100, 200, 300]}],
                           "source-ip": [{"cidr": "10.0.0.0/8"}]}}"#;
    let e = |x_limit: i64| {
        json!({"time": "2017-10-02T16:24:49Z", "detail": {"c-count": 5, "d-count": 3,
            "x-limit": x_limit, "source-ip": "10.0.0.33", "state": "running"}})
    };
    assert_matches(p, &e(999));
    assert_no_match(p, &e(300));
}

#[test]
fn a_repeated_key_keeps_its_last_definition() {
    // serde_json keeps the last of duplicate keys, as AWS documents.
    let p = r#"{"detail": {"location": [{"prefix": "us-"}], "location": [{"anything-but": "us-east"}]}}"#;
    assert_matches(p, &event(json!({"location": "eu-west"})));
    assert_no_match(p, &event(json!({"location": "us-east"})));
}

#[test]
fn dotted_names_join_like_nested_objects() {
    // AWS-validated: Ruler joins names with dots, in patterns and events alike.
    let nested_pattern = r#"{"detail": {"state": {"status": ["running"]}}}"#;
    let dotted_pattern = r#"{"detail": {"state.status": ["running"]}}"#;
    let nested_event = event(json!({"state": {"status": "running"}}));
    let dotted_event = event(json!({"state.status": "running"}));
    for p in [nested_pattern, dotted_pattern] {
        assert_matches(p, &nested_event);
        assert_matches(p, &dotted_event);
    }
    assert_no_match(
        nested_pattern,
        &event(json!({"state.status": {"status": "running"}})),
    );
    assert_no_match(
        r#"{"detail": {"state.status": {"status": ["running"]}}}"#,
        &nested_event,
    );
    // Dotted and nested event keys merge into one object, also around arrays.
    assert_matches(
        r#"{"a": {"b": [1], "c": [2]}}"#,
        &json!({"a.b": 1, "a": {"c": 2}}),
    );
    assert_matches(
        r#"{"a": {"b": [1], "c": [2]}}"#,
        &json!({"a": [{"b": 1}], "a.c": 2}),
    );
    assert_matches(r#"{"a.b.c": [1]}"#, &json!({"a.b": {"c": 1}}));
    assert_matches(r#"{"a": {"b": [1, 2]}}"#, &json!({"a.b": 2, "a": {"b": 3}}));
    assert_no_match(
        r#"{"a": {"b": [{"exists": false}]}}"#,
        &json!({"x": 1, "a.b": 2}),
    );
    assert_matches(r#"{"a": {"b": [{"exists": false}]}}"#, &json!({"a.bc": 2}));
}

#[test]
fn a_json_string_is_not_an_object() {
    assert_no_match(
        r#"{"detail": {"my-key": ["my-value"]}}"#,
        &json!({"detail": "{\"my-key\": \"my-value\"}"}),
    );
}

#[test]
fn operator_names_are_ordinary_fields_outside_or() {
    assert_matches(r#"{"prefix": ["x"]}"#, &json!({"prefix": "x"}));
    assert_matches(r#"{"a": {"numeric": [1]}}"#, &json!({"a": {"numeric": 1}}));
}

#[test]
fn invalid_patterns_with_aws_reasons() {
    let cases = [
        (r#"["not", "a", "dict"]"#, "Filter is not an object"),
        (r#"{}"#, "Empty objects are not allowed"),
        (r#"{"detail": {}}"#, "Empty objects are not allowed"),
        (r#"{"int": 42}"#, r#""int" must be an object or an array"#),
        (r#"{"string": "my-value"}"#, r#""string" must be an object or an array"#),
        (r#"{"resources": []}"#, "Empty arrays are not allowed"),
        (r#"{"a": [["nested"]]}"#, "Match value must be String, number, true, false, or null"),
        (r#"{"a": [{}]}"#, "Match expression name not found"),
        (r#"{"my_key": [{"EXISTS": true}]}"#, "Unrecognized match type EXISTS"),
        (r#"{"equal": [{"NUMERIC": ["=", 5]}]}"#, "Unrecognized match type NUMERIC"),
        (r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#, "Only one key allowed in match expression"),
        (r#"{"time": [{"prefix": 123}]}"#, "prefix match pattern must be a string"),
        (r#"{"time": [{"prefix": ["2022-07-13"]}]}"#, "prefix match pattern must be a string"),
        (r#"{"a": [{"prefix": {"bogus": "x"}}]}"#, "Unsupported prefix pattern: bogus"),
        (r#"{"a": [{"prefix": {"equals-ignore-case": 1}}]}"#, "equals-ignore-case match pattern must be a string"),
        (r#"{"FileName": [{"suffix": 123}]}"#, "suffix match pattern must be a string"),
        (r#"{"FileName": [{"suffix": [".png"]}]}"#, "suffix match pattern must be a string"),
        (r#"{"a": [{"equals-ignore-case": ["x"]}]}"#, "equals-ignore-case match pattern must be a string"),
        (r#"{"a": [{"equals-ignore-case": {"prefix": "ec2"}}]}"#, "equals-ignore-case match pattern must be a string"),
        (r#"{"a": [{"exists": "yes"}]}"#, "exists match pattern must be either true or false."),
        (r#"{"a": [{"exactly": 1}]}"#, "exact match pattern must be a string"),
        (r#"{"a": [{"wildcard": 123}]}"#, "wildcard match pattern must be a string"),
        (r#"{"a": [{"wildcard": ["x*"]}]}"#, "wildcard match pattern must be a string"),
        (r#"{"a": [{"wildcard": "arn:aws:events:us-east-1:**:event-bus/*"}]}"#, "Consecutive wildcard characters at pos 26"),
        (r#"{"a": [{"wildcard": "a\\b"}]}"#, "Invalid escape character at pos 2"),
        (r#"{"a": [{"wildcard": "ab\\"}]}"#, "Invalid escape character at pos 3"),
        (r#"{"a": [{"anything-but": null}]}"#, "Value of anything-but must be an array or single string/number value."),
        (r#"{"a": [{"anything-but": true}]}"#, "Value of anything-but must be an array or single string/number value."),
        (r#"{"a": [{"anything-but": ["stopped", null]}]}"#, "Inside anything but list, start|null|boolean is not supported."),
        (r#"{"a": [{"anything-but": ["stopped", 1]}]}"#, "Inside anything but list, either all values are number or string, mixed type is not supported"),
        (r#"{"a": [{"anything-but": []}]}"#, "Inside anything but list, either all values are number or string, mixed type is not supported"),
        (r#"{"a": [{"anything-but": {}}]}"#, "Anything-But expression name not found"),
        (r#"{"a": [{"anything-but": {"numeric": [">", 1]}}]}"#, "Unsupported anything-but pattern: numeric"),
        (r#"{"a": [{"anything-but": {"prefix": ""}}]}"#, "Null prefix/suffix not allowed"),
        (r#"{"a": [{"anything-but": {"suffix": ["", "x"]}}]}"#, "Null prefix/suffix not allowed"),
        (r#"{"a": [{"anything-but": {"prefix": 123}}]}"#, "prefix/suffix match pattern must be a string"),
        (r#"{"a": [{"anything-but": {"prefix": [123, "test"]}}]}"#, "prefix/suffix match pattern must be a string"),
        (r#"{"a": [{"anything-but": {"suffix": [null, ".txt"]}}]}"#, "prefix/suffix match pattern must be a string"),
        (r#"{"a": [{"anything-but": {"prefix": {"equals-ignore-case": "file"}}}]}"#, "Value of anything-but must be an array or single string/number value."),
        (r#"{"a": [{"anything-but": {"equals-ignore-case": 123}}]}"#, "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."),
        (r#"{"a": [{"anything-but": {"equals-ignore-case": [123, 456]}}]}"#, "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."),
        (r#"{"a": [{"anything-but": {"wildcard": 123}}]}"#, "wildcard match pattern must be a string"),
        (r#"{"a": [{"anything-but": {"wildcard": "**"}}]}"#, "Consecutive wildcard characters at pos 1"),
        (r#"{"a": [{"anything-but": "x", "prefix": "y"}]}"#, "Too many elements in numeric expression"),
        (r#"{"c-count": [{"numeric": 10}]}"#, "Value of numeric must be an array."),
        (r#"{"c-count": [{"numeric": []}]}"#, "Invalid member in numeric match: ]"),
        (r#"{"c-count": [{"numeric": [5]}]}"#, "Invalid member in numeric match: 5"),
        (r#"{"c-count": [{"numeric": ["!=", 5]}]}"#, "Unrecognized numeric range operator: !="),
        (r#"{"c-count": [{"numeric": ["=", "5"]}]}"#, "Value of equals must be numeric"),
        (r#"{"c-count": [{"numeric": ["=", 5, 6]}]}"#, "Too many elements in numeric expression"),
        (r#"{"c-count": [{"numeric": ["<", 5, ">", 1]}]}"#, "Too many elements in numeric expression"),
        (r#"{"c-count": [{"numeric": [">", 0, ">", 0]}]}"#, "Bad numeric range operator: >"),
        (r#"{"c-count": [{"numeric": [">", 0, 5]}]}"#, "Bad value in numeric range: 5"),
        (r#"{"c-count": [{"numeric": [">", 0, "<"]}]}"#, "Value of < must be numeric"),
        (r#"{"c-count": [{"numeric": [">", 0, "<", 5, 6]}]}"#, "Too many terms in numeric range expression"),
        (r#"{"c-count": [{"numeric": [">", 5, "<", 5]}]}"#, "Bottom must be less than top"),
        (r#"{"c-count": [{"numeric": [">=", 9, "<=", 1]}]}"#, "Bottom must be less than top"),
        (r#"{"c-count": [{"numeric": [">", 0], "prefix": "x"}]}"#, "Too many elements in numeric expression"),
        (r#"{"ip": [{"cidr": "bad-filter"}]}"#, "Malformed CIDR, one '/' required"),
        (r#"{"ip": [{"cidr": "bad-/64filter"}]}"#, "Malformed CIDR, mask bits must be an integer"),
        (r#"{"ip": [{"cidr": "10.0.0.0/-1"}]}"#, "Malformed CIDR, mask bits must not be negative"),
        (r#"{"ip": [{"cidr": "xx.11.xx/8"}]}"#, "Nonstandard IP address: xx.11.xx"),
        (r#"{"ip": [{"cidr": "xxxx:db8:1234:1a00::/64"}]}"#, "Nonstandard IP address: xxxx:db8:1234:1a00::"),
        (r#"{"ip": [{"cidr": "10.0.0.300/8"}]}"#, "Invalid IP address: 10.0.0.300"),
        (r#"{"ip": [{"cidr": "10.0.0.0/32"}]}"#, "IPv4 mask bits must be < 32"),
        (r#"{"ip": [{"cidr": "::/128"}]}"#, "IPv6 mask bits must be < 128"),
        (r#"{"ip": [{"cidr": ["bad-type"]}]}"#, "prefix match pattern must be a string"),
        (r#"{"$or": {"a": ["x"]}}"#, "It must be an Array followed with $or."),
        (r#"{"$or": [{"a": ["x"]}]}"#, "There must have at least 2 Objects in $or relationship."),
        (r#"{"$or": [{"a": ["x"]}, "b"]}"#, "Only JSON object is allowed in array of $or relationship."),
        (r#"{"$or": [{"a": ["x"]}, {}]}"#, "Empty objects are not allowed"),
        (r#"{"$or": [{"numeric": [1]}, {"prefix": ["abc"]}]}"#, "numeric is Ruler reserved fieldName which cannot be used inside $or."),
        (r#"{"$or": [{"a": {"prefix": ["x"]}}, {"b": ["y"]}]}"#, "prefix is Ruler reserved fieldName which cannot be used inside $or."),
    ];
    for (text, reason) in cases {
        assert_invalid(text, reason);
    }
}

#[test]
fn invalid_json_is_reported_with_the_aws_preamble() {
    for text in [
        "this is not json",
        "{'bad': 'quotation'}",
        r#"{"a": ["x"]"#,
        "",
    ] {
        let error = Pattern::parse(text).expect_err(text);
        assert!(
            error
                .to_string()
                .starts_with("Event pattern is not valid. Reason: "),
            "{error}"
        );
    }
    let error = Pattern::parse(r#"{"a": 1}"#).expect_err("leaf");
    assert_eq!(
        error.to_string(),
        r#"Event pattern is not valid. Reason: "a" must be an object or an array"#
    );
}

#[test]
fn or_combinations_are_limited_to_1000() {
    let or_of = |n: usize| {
        let alternatives: Vec<String> = (0..n).map(|i| format!(r#"{{"f{i}": ["x"]}}"#)).collect();
        format!(r#"{{"$or": [{}]}}"#, alternatives.join(","))
    };
    // 10 * 10 * 10 = 1000 combinations is the most AWS accepts.
    let at_limit = format!(
        r#"{{"a": {}, "b": {}, "c": {}}}"#,
        or_of(10),
        or_of(10),
        or_of(10)
    );
    let p = pattern(&at_limit);
    assert!(p.matches(&json!({"a": {"f3": "x"}, "b": {"f9": "x"}, "c": {"f0": "x"}})));
    assert!(!p.matches(&json!({"a": {"f3": "x"}, "b": {"f9": "x"}})));
    let over = format!(
        r#"{{"a": {}, "b": {}, "c": {}, "d": {}}}"#,
        or_of(10),
        or_of(10),
        or_of(10),
        or_of(2)
    );
    let error = Pattern::parse(&over).expect_err("over the limit");
    assert!(error.reason().contains("1000"), "{error}");
    // A pattern that would expand to 10^30 alternatives is refused quickly.
    let huge = format!(
        "{{{}}}",
        (0..30)
            .map(|i| format!(r#""k{i}": {}"#, or_of(10)))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(Pattern::parse(&huge).is_err());
}

#[test]
fn deep_events_do_not_overflow() {
    let mut deep = json!("leaf");
    for _ in 0..100_000 {
        deep = Value::Array(vec![deep]);
    }
    // Built by hand: `json!` would serialize `deep` recursively. The dotted key makes matching
    // resolve dotted names too, which must not copy the event.
    let e = Value::Object(serde_json::Map::from_iter([
        ("a".to_owned(), deep),
        ("x.y".to_owned(), json!(1)),
    ]));
    assert_matches(r#"{"a": ["leaf"]}"#, &e);
    assert_no_match(r#"{"a": [{"exists": false}]}"#, &e);
    assert_no_match(r#"{"a": {"b": ["leaf"]}}"#, &e);
    assert_matches(r#"{"a": {"b": [{"exists": false}]}, "x": {"y": [1]}}"#, &e);
    // serde_json drops deep values recursively; forget it to keep this test about matching.
    std::mem::forget(e);
}
