//! The etcd client's operations beyond registers, transactions and sets:
//! bank, counter, unique ids, queue and lock (each one etcd transaction
//! or a short retry loop of them).

use super::*;

impl EtcdClient {
    /// `[start, end)` of every key under `<prefix><space>/`.
    pub(super) fn space_range(&self, space: &str) -> (String, String) {
        // range_end = the prefix with its last byte + 1 ('/' + 1 = '0').
        (
            format!("{}{space}/", self.prefix),
            format!("{}{space}0", self.prefix),
        )
    }

    /// Every kv under a space, sorted by key: (key, value, mod_revision).
    pub(super) async fn range_space(
        &self,
        space: &str,
        limit: Option<u32>,
    ) -> Result<Result<Vec<(String, Value, i64)>, String>, EtcdError> {
        let (start, end) = self.space_range(space);
        let mut req = self.range_req(&start);
        req["range_end"] = json!(b64(&end));
        if let Some(l) = limit {
            req["limit"] = json!(l);
        }
        let v = self.post("/v3/kv/range", &req).await?;
        let mut out = Vec::new();
        for kv in v.get("kvs").and_then(Value::as_array).into_iter().flatten() {
            let raw = kv.get("key").and_then(Value::as_str).unwrap_or("");
            let key = match B64.decode(raw) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => return Ok(Err(format!("bad base64 key: {e}"))),
            };
            let value = match decode_value(kv.get("value").unwrap_or(&Value::Null)) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            let rev = kv.get("mod_revision").and_then(int).unwrap_or(0);
            out.push((key, value, rev));
        }
        Ok(Ok(out))
    }

    /// Bank setup: every account at its initial balance (overwriting what
    /// an earlier test left), in one txn.
    pub(super) async fn bank_setup(&self) -> Result<(), String> {
        let (start, end) = self.space_range("bank");
        let clear = json!({"key": b64(&start), "range_end": b64(&end)});
        self.post("/v3/kv/deleterange", &clear)
            .await
            .map_err(|e| format!("clearing the bank: {e:?}"))?;
        let puts: Vec<Value> = self
            .balances
            .iter()
            .enumerate()
            .map(|(i, b)| {
                json!({"requestPut": {"key": b64(&self.key("bank", &json!(i))), "value": b64(&b.to_string())}})
            })
            .collect();
        self.post("/v3/kv/txn", &json!({"success": puts}))
            .await
            .map_err(|e| format!("creating the bank accounts: {e:?}"))?;
        Ok(())
    }

    pub(super) async fn bank_transfer(&self, op: &Op) -> Result<Completion, EtcdError> {
        let field = |k: &str| op.value.get(k).and_then(Value::as_u64);
        let (Some(from), Some(to), Some(amount)) = (field("from"), field("to"), field("amount"))
        else {
            return Ok(Completion::fail("transfer needs from, to, amount"));
        };
        let (kf, kt) = (self.key("bank", &json!(from)), self.key("bank", &json!(to)));
        let reads = json!({"success": [
            {"requestRange": self.range_req(&kf)},
            {"requestRange": self.range_req(&kt)},
        ]});
        let snap = self.post("/v3/kv/txn", &reads).await?;
        let resp = |i: usize| {
            snap.pointer(&format!("/responses/{i}/response_range"))
                .map(first_kv)
                .unwrap_or(Ok(None))
        };
        let (Ok(Some((bf, rf))), Ok(Some((bt, rt)))) = (resp(0), resp(1)) else {
            return Ok(Completion::fail("no such account"));
        };
        let (Some(bf), Some(bt)) = (bf.as_i64(), bt.as_i64()) else {
            return Ok(Completion::fail("a balance is not a number"));
        };
        let amount = amount as i64;
        if bf < amount {
            // Jepsen's bank forbids negative balances.
            return Ok(Completion::fail("insufficient funds"));
        }
        let body = json!({
            "compare": [
                {"target": "MOD", "result": "EQUAL", "key": b64(&kf), "mod_revision": rf.to_string()},
                {"target": "MOD", "result": "EQUAL", "key": b64(&kt), "mod_revision": rt.to_string()},
            ],
            "success": [
                {"requestPut": {"key": b64(&kf), "value": b64(&(bf - amount).to_string())}},
                {"requestPut": {"key": b64(&kt), "value": b64(&(bt + amount).to_string())}},
            ],
        });
        let v = self.post("/v3/kv/txn", &body).await?;
        Ok(if succeeded(&v) {
            Completion::ok(op.value.clone())
        } else {
            Completion::fail("conflict: an account changed since it was read")
        })
    }

    pub(super) async fn bank_read(&self) -> Result<Completion, EtcdError> {
        let kvs = match self.range_space("bank", None).await? {
            Ok(k) => k,
            Err(e) => return Ok(Completion::fail(e)),
        };
        let (start, _) = self.space_range("bank");
        let mut out = serde_json::Map::new();
        for (k, v, _) in kvs {
            out.insert(k.strip_prefix(&start).unwrap_or(&k).to_string(), v);
        }
        Ok(Completion::ok(Value::Object(out)))
    }

    pub(super) async fn counter_add(&self, op: &Op) -> Result<Completion, EtcdError> {
        let Some(delta) = op.value.as_i64() else {
            return Ok(Completion::fail("counter add takes an integer"));
        };
        let key = self.key("counter", &json!(0));
        for _ in 0..COUNTER_RETRIES {
            // Read the current value linearizably: a stale base would only
            // make the guarded write fail, but costs a retry.
            let v = self
                .post("/v3/kv/range", &json!({"key": b64(&key)}))
                .await?;
            let (cur, rev) = match first_kv(&v) {
                Ok(Some((c, r))) => (c.as_i64().unwrap_or(0), r),
                Ok(None) => (0, 0),
                Err(e) => return Ok(Completion::fail(e)),
            };
            let body = json!({
                "compare": [{"target": "MOD", "result": "EQUAL", "key": b64(&key), "mod_revision": rev.to_string()}],
                "success": [{"requestPut": {"key": b64(&key), "value": b64(&(cur + delta).to_string())}}],
            });
            if succeeded(&self.post("/v3/kv/txn", &body).await?) {
                return Ok(Completion::ok(op.value.clone()));
            }
        }
        Ok(Completion::fail(
            "counter: too much contention, nothing written",
        ))
    }

    pub(super) async fn counter_read(&self) -> Result<Completion, EtcdError> {
        let key = self.key("counter", &json!(0));
        let v = self.post("/v3/kv/range", &self.range_req(&key)).await?;
        Ok(match first_kv(&v) {
            Ok(Some((c, _))) => Completion::ok(json!(c.as_i64().unwrap_or(0))),
            Ok(None) => Completion::ok(json!(0)),
            Err(e) => Completion::fail(e),
        })
    }

    pub(super) async fn generate_id(&self) -> Result<Completion, EtcdError> {
        let key = self.key("ids", &json!(0));
        let v = self
            .post("/v3/kv/put", &json!({"key": b64(&key), "value": b64("0")}))
            .await?;
        Ok(match revision(&v) {
            Some(r) => Completion::ok(json!(r)),
            // It was written, but we cannot say which id it got.
            None => Completion::info("put response without a revision"),
        })
    }

    pub(super) fn queue_key(&self, v: &Value) -> String {
        // Zero-padded so that key order is enqueue order for our integers.
        match v.as_u64() {
            Some(n) => format!("{}queue/{n:020}", self.prefix),
            None => self.key("queue", v),
        }
    }

    pub(super) async fn enqueue(&self, op: &Op) -> Result<Completion, EtcdError> {
        let body =
            json!({"key": b64(&self.queue_key(&op.value)), "value": b64(&op.value.to_string())});
        self.post("/v3/kv/put", &body).await?;
        Ok(Completion::ok(op.value.clone()))
    }

    /// Deletes `kvs` in one txn guarded by each one's mod_revision:
    /// `Ok(true)` when all were deleted, `Ok(false)` when one had changed.
    pub(super) async fn take(&self, kvs: &[(String, Value, i64)]) -> Result<bool, EtcdError> {
        let compare: Vec<Value> = kvs
            .iter()
            .map(|(k, _, r)| json!({"target": "MOD", "result": "EQUAL", "key": b64(k), "mod_revision": r.to_string()}))
            .collect();
        let delete: Vec<Value> = kvs
            .iter()
            .map(|(k, _, _)| json!({"requestDeleteRange": {"key": b64(k)}}))
            .collect();
        let v = self
            .post(
                "/v3/kv/txn",
                &json!({"compare": compare, "success": delete}),
            )
            .await?;
        Ok(succeeded(&v))
    }

    pub(super) async fn dequeue(&self) -> Result<Completion, EtcdError> {
        let first = match self.range_space("queue", Some(1)).await? {
            Ok(k) => k,
            Err(e) => return Ok(Completion::fail(e)),
        };
        if first.is_empty() {
            return Ok(Completion::fail("empty"));
        }
        Ok(if self.take(&first).await? {
            Completion::ok(first[0].1.clone())
        } else {
            Completion::fail("conflict: another client took it")
        })
    }

    /// Dequeues everything left, 100 keys per txn (etcd's default limit of
    /// operations per txn is 128).
    pub(super) async fn drain(&self) -> Result<Completion, EtcdError> {
        let mut out = Vec::new();
        loop {
            let kvs = match self.range_space("queue", Some(100)).await? {
                Ok(k) => k,
                Err(e) if out.is_empty() => return Ok(Completion::fail(e)),
                // Some elements were taken already: the outcome is partial.
                Err(e) => return Ok(Completion::info(e)),
            };
            if kvs.is_empty() {
                return Ok(Completion::ok(Value::Array(out)));
            }
            match self.take(&kvs).await {
                Ok(true) => out.extend(kvs.into_iter().map(|kv| kv.1)),
                Ok(false) => continue,
                Err(e) if out.is_empty() => return Err(e),
                Err(EtcdError::NotSent(e) | EtcdError::Indefinite(e)) => {
                    return Ok(Completion::info(e));
                }
            }
        }
    }

    pub(super) async fn acquire(&mut self) -> Result<Completion, EtcdError> {
        if self.held.is_some() {
            return Ok(Completion::fail("already held by this client"));
        }
        // A lease alone changes no lock state: if granting it fails in any
        // way, the acquire certainly did not happen.
        let lease = match self
            .post("/v3/lease/grant", &json!({"TTL": LOCK_TTL_S.to_string()}))
            .await
        {
            Ok(v) => v,
            Err(e @ EtcdError::NotSent(_)) => return Err(e),
            Err(EtcdError::Indefinite(e)) => {
                return Ok(Completion::fail(format!("lease grant: {e}")));
            }
        };
        let Some(id) = lease.get("ID").and_then(Value::as_str).map(str::to_string) else {
            return Ok(Completion::fail("lease grant answered without an ID"));
        };
        let key = b64(&self.key("lock", &json!(0)));
        let body = json!({
            "compare": [{"target": "CREATE", "result": "EQUAL", "key": key, "create_revision": "0"}],
            "success": [{"requestPut": {"key": key, "value": b64(&json!(id).to_string()), "lease": id}}],
        });
        let v = self.post("/v3/kv/txn", &body).await?;
        if !succeeded(&v) {
            self.revoke(&id).await;
            return Ok(Completion::fail("held"));
        }
        match revision(&v) {
            Some(token) => {
                self.held = Some((id, token));
                Ok(Completion::ok(json!({"token": token})))
            }
            None => Ok(Completion::info("txn response without a revision")),
        }
    }

    pub(super) async fn release(&mut self) -> Result<Completion, EtcdError> {
        let Some((id, token)) = self.held.clone() else {
            return Ok(Completion::fail("not held by this client"));
        };
        let key = b64(&self.key("lock", &json!(0)));
        // Only our own grant: the key's create_revision is our token.
        let body = json!({
            "compare": [{"target": "CREATE", "result": "EQUAL", "key": key, "create_revision": token.to_string()}],
            "success": [{"requestDeleteRange": {"key": key}}],
        });
        let v = match self.post("/v3/kv/txn", &body).await {
            Ok(v) => v,
            // Never sent: still held; a later release tries again.
            Err(e @ EtcdError::NotSent(_)) => return Err(e),
            Err(e) => {
                // Unknown outcome: the runner retires this client anyway.
                self.held = None;
                return Err(e);
            }
        };
        self.held = None;
        self.revoke(&id).await;
        Ok(if succeeded(&v) {
            Completion::ok(Value::Null)
        } else {
            Completion::fail("lock lost: its lease expired")
        })
    }

    /// Best effort: the lease expires by itself after its TTL anyway.
    pub(super) async fn revoke(&self, id: &str) {
        let _ = self.post("/v3/lease/revoke", &json!({"ID": id})).await;
    }
}
