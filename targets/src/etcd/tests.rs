use super::*;

#[test]
fn parses_gateway_shapes() {
    // From LAB-NOTES §5: strings for int64, base64 values.
    let r = json!({"header":{"revision":"3"},"kvs":[{"key":"azE=","create_revision":"3","mod_revision":"3","version":"1","value":"Mw=="}],"count":"1"});
    assert_eq!(first_kv(&r).unwrap(), Some((json!(3), 3)));
    assert_eq!(first_kv(&json!({"header":{}})).unwrap(), None);
    assert_eq!(
        "serializable".parse::<ReadMode>(),
        Ok(ReadMode::Serializable)
    );
    assert!("eventual".parse::<ReadMode>().is_err());
}

/// A loopback server that accepts connections and reads requests but
/// never answers (`hang`), or closes them as soon as a request arrives.
async fn fake_server(hang: bool) -> String {
    use tokio::io::AsyncReadExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                if hang {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            });
        }
    });
    url
}

async fn invoke_against(url: &str, w: Workload, op: Op) -> Completion {
    let t = EtcdTarget::new(EtcdConfig::new([("n1", url)]));
    let mut opts = ClientOpts::new(faultline_workloads::WorkloadOptions::new(w));
    opts.timeout = Duration::from_millis(200);
    let mut c = t.client("n1", &opts).await.unwrap();
    c.invoke(&op).await
}

#[tokio::test]
async fn sent_but_unanswered_write_is_info_read_is_fail() {
    use faultline_workloads::Outcome;
    for hang in [true, false] {
        let url = fake_server(hang).await;
        let k = Some(json!(1));
        let w = invoke_against(
            &url,
            Workload::Register,
            Op::new("write", k.clone(), json!(1)),
        )
        .await;
        assert_eq!(w.outcome, Outcome::Info, "hang={hang} {w:?}");
        let cas = invoke_against(
            &url,
            Workload::Register,
            Op::new("cas", k.clone(), json!([1, 2])),
        )
        .await;
        assert_eq!(cas.outcome, Outcome::Info, "hang={hang} {cas:?}");
        let r = invoke_against(
            &url,
            Workload::Register,
            Op::new("read", k.clone(), Value::Null),
        )
        .await;
        assert_eq!(r.outcome, Outcome::Fail, "hang={hang} {r:?}");
        let t = Op::new("txn", None, json!([["r", 1, null]]));
        let r = invoke_against(&url, Workload::ListAppend, t).await;
        assert_eq!(r.outcome, Outcome::Fail, "hang={hang} {r:?}");
    }
}

#[tokio::test]
async fn refused_connection_is_fail_even_for_writes() {
    // Port 1 on loopback: nothing listens, the connect is refused.
    let t = EtcdTarget::new(EtcdConfig::new([("n1", "http://127.0.0.1:1")]));
    let opts = ClientOpts::new(faultline_workloads::WorkloadOptions::new(
        Workload::Register,
    ));
    let mut c = t.client("n1", &opts).await.unwrap();
    let done = c.invoke(&Op::new("write", Some(json!(1)), json!(1))).await;
    assert_eq!(done.outcome, faultline_workloads::Outcome::Fail, "{done:?}");
    assert!(t.client("n9", &opts).await.is_err());
}
