//! Unit tests of the EDN reader: values, Jepsen history shapes, errors with lines.

use super::*;
use serde_json::json;

fn v(s: &str) -> Value {
    parse_value(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn scalars() {
    assert_eq!(v("nil"), Value::Null);
    assert_eq!(v("true"), json!(true));
    assert_eq!(v("false"), json!(false));
    assert_eq!(v("42"), json!(42));
    assert_eq!(v("-7"), json!(-7));
    assert_eq!(v("+7"), json!(7));
    assert_eq!(v("18446744073709551615"), json!(u64::MAX));
    assert_eq!(
        v("123456789012345678901234567890"),
        json!("123456789012345678901234567890")
    );
    assert_eq!(
        v("-123456789012345678901234567890"),
        json!("-123456789012345678901234567890")
    );
    assert_eq!(v("5N"), json!(5));
    assert_eq!(v("99999999999999999999N"), json!("99999999999999999999"));
    assert_eq!(v("1.5"), json!(1.5));
    assert_eq!(v("-2.5e3"), json!(-2500.0));
    assert_eq!(v("1.25M"), json!(1.25));
    assert_eq!(v("1/2"), json!(0.5));
    assert_eq!(v("-3/4"), json!(-0.75));
    assert_eq!(v("0x1F"), json!(31));
    assert_eq!(v("1e999"), json!("1e999"));
    assert_eq!(v("##Inf"), json!("Inf"));
}

#[test]
fn strings_chars_keywords_symbols() {
    assert_eq!(v(r#""a\"b\\c\nd\te\u00e9""#), json!("a\"b\\c\nd\te\u{e9}"));
    assert_eq!(v(r#""\ud83d\ude00""#), json!("\u{1F600}"));
    assert_eq!(v("\"multi\nline\""), json!("multi\nline"));
    assert_eq!(v(r"\a"), json!("a"));
    assert_eq!(v(r"\newline"), json!("\n"));
    assert_eq!(v(r"\space"), json!(" "));
    assert_eq!(v(r"\u0041"), json!("A"));
    assert_eq!(v(r"[\( \)]"), json!(["(", ")"]));
    assert_eq!(v(":timed-out"), json!("timed-out"));
    assert_eq!(v(":jepsen.client/timeout"), json!("jepsen.client/timeout"));
    assert_eq!(v("foo.bar/baz"), json!("foo.bar/baz"));
    assert_eq!(v("-"), json!("-"));
    assert_eq!(v("#\"a.*b\""), json!("a.*b"));
}

#[test]
fn collections_tags_comments_discard() {
    assert_eq!(v("[1, 2 ,3]"), json!([1, 2, 3]));
    assert_eq!(v("(1 (2) [])"), json!([1, [2], []]));
    assert_eq!(v("#{1 2}"), json!([1, 2]));
    assert_eq!(
        v("{:a 1, \"b\" [2] 3 4 nil 5}"),
        json!({"a": 1, "b": [2], "3": 4, "nil": 5})
    );
    assert_eq!(
        v("#inst \"2020-01-01T00:00:00Z\""),
        json!("2020-01-01T00:00:00Z")
    );
    assert_eq!(
        v("#uuid \"f81d4fae-7dec-11d0-a765-00a0c91e6bf6\""),
        json!("f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
    );
    assert_eq!(v("#my/tag [1]"), json!([1]));
    assert_eq!(v("[1 #_ 2 3 #_#_ 4 5]"), json!([1, 3]));
    assert_eq!(v("[1 ; comment ]\n 2]"), json!([1, 2]));
    assert_eq!(v("{:a #_ :b 1}"), json!({"a": 1}));
}

#[test]
fn value_errors() {
    for s in [
        "[1 2",
        "{:a}",
        "\"abc",
        "#{1",
        "(]",
        "1/0",
        "12abc",
        r"\bogus",
        r#""\q""#,
        "#",
        "##Foo",
        "#_",
        "[#_]",
        "#tag",
        r#""\u12""#,
        r#""\ud800x""#,
    ] {
        assert!(parse_value(s).is_err(), "{s} should fail");
    }
    // Within half of a test thread's default 2 MiB stack, even unoptimized.
    let t = std::thread::Builder::new().stack_size(1 << 20).spawn(|| {
        for open in ["[", "(", "{:a ", "#{", "#t ", "{:value ["] {
            let e = parse_value(&open.repeat(100_000)).unwrap_err();
            assert!(e.message.contains("nesting"), "{e}");
            assert!(parse(open.repeat(100_000).as_bytes()).is_err());
            let e = parse(format!("{{:value {}", open.repeat(100_000)).as_bytes()).unwrap_err();
            assert!(e.message.contains("nesting"), "{e}");
        }
    });
    t.unwrap().join().unwrap();
}

fn ops(s: &str) -> Vec<Event> {
    parse(s.as_bytes())
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .events
}

#[test]
fn containers() {
    let one = "{:process 0, :type :invoke, :f :read, :value nil}";
    for s in [
        format!("[{one} {one}]"),
        format!("({one}\n{one})"),
        format!("{one}\n{one}\n"),
        format!("; header\n[{one},\n ; mid\n #_ {{:x 1}} {one}] ; tail\n"),
        format!("#jepsen.history.Op{one} #jepsen.history.Op {one}"),
    ] {
        let evs = ops(&s);
        assert_eq!(evs.len(), 2, "{s}");
        assert_eq!(evs[0].process, Process::Client(0));
        assert_eq!(evs[0].f, "read");
    }
    assert!(ops("").is_empty());
    assert!(ops("[]").is_empty());
    assert!(ops("; only a comment").is_empty());
}

#[test]
fn op_fields() {
    let evs = ops(
        "[{:index 3 :time 99999999999 :process :nemesis :type :info :f :start :value \"part\"}\n\
         {:process 2,\n :type :fail,\n :f :cas,\n :value [1 2], :error [:timeout \"x\"], :node \"n1\", :extra {:a 1}}\n\
         {:process :worker :type :ok :f :get :key \"4\" :value \"x\" :error nil}\n\
         {:type :invoke :value [[:append 1 2]]}]",
    );
    assert_eq!(evs[0].index, Some(3));
    assert_eq!(evs[0].time, Some(99_999_999_999));
    assert_eq!(evs[0].process, Process::Nemesis);
    assert_eq!(evs[0].kind, EventType::Info);
    assert_eq!(evs[1].line, 2);
    assert_eq!(evs[1].kind, EventType::Fail);
    assert_eq!(evs[1].value, json!([1, 2]));
    assert_eq!(evs[1].error.as_deref(), Some(&json!(["timeout", "x"])));
    assert_eq!(evs[1].node.as_deref(), Some("n1"));
    assert_eq!(evs[2].line, 6);
    assert_eq!(evs[2].process, Process::Named("worker".into()));
    assert_eq!(evs[2].key.as_deref(), Some(&json!("4")));
    assert_eq!(evs[2].error, None);
    assert_eq!(evs[3].process, Process::Named(ANONYMOUS.into()));
    assert_eq!(evs[3].f, "");
    assert_eq!(evs[3].value, json!([["append", 1, 2]]));
}

#[test]
fn fuzz_findings() {
    // A backslash before a newline: one-line error, not a two-line one.
    crate::format::fuzz_check(b"{:a [\\\nu0]}", 3);
}

#[test]
fn op_errors_name_the_line() {
    let cases = [
        ("[{:process 0 :type", 1, "unexpected end of input"),
        (
            "{:process 0 :type :invoke}\n{:process 0 :type :okay :f :r}",
            2,
            ":type",
        ),
        ("{:process 0 :f :r}", 1, "no :type"),
        ("{:process -1 :type :ok}", 1, ":process"),
        ("{:process 1 :type :ok :time \"x\"}", 1, ":time"),
        ("\n[1]", 2, "expected an op map"),
        ("[{:type :ok}", 1, "not closed"),
        ("{:type :ok :f}", 1, "without a value"),
    ];
    for (s, line, msg) in cases {
        let e = parse(s.as_bytes()).unwrap_err();
        assert_eq!(e.line, line, "{s}: {e}");
        assert!(e.message.contains(msg), "{s}: {e}");
    }
    let e = parse(&b"{:type :ok}\n{:f \xff}"[..]).unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    let e = parse(&b";\xfe\n"[..]).unwrap_err();
    assert_eq!(e.line, 1, "{e}");
}
