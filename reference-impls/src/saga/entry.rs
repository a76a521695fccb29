//! The entry's side (node 1 orchestrating, or the credit service in
//! choreography): the saga log, each step sent and its result handled,
//! compensation in reverse order, answers to clients, recovery resends and
//! the final read.

use super::*;

impl Saga {
    pub(super) fn end(&mut self, saga: SagaId, committed: bool, why: String) {
        if self.ended.contains_key(&saga) {
            return;
        }
        self.running.remove(&saga);
        self.out.records.push(Record::End {
            saga,
            committed,
            why: why.clone(),
        });
        self.ended.insert(saga, (committed, why));
        self.answer(saga);
    }

    pub(super) fn answer(&mut self, saga: SagaId) {
        let Some((committed, why)) = self.ended.get(&saga).cloned() else {
            return;
        };
        for rid in self.waiting.remove(&saga).unwrap_or_default() {
            let out = if committed {
                Ok(json!({"saga": saga, "outcome": "committed"}))
            } else {
                Err(format!("saga {saga} compensated: {why}"))
            };
            self.out.replies.push((rid, Reply::Done(out)));
        }
    }

    pub(super) fn on_request(&mut self, cmd: Command) {
        if !self.is_entry() {
            self.out.replies.push((
                cmd.id,
                Reply::NotLeader {
                    leader: Some(self.entry),
                },
            ));
            return;
        }
        match cmd.op {
            Op::SagaInit { credit, stock } => {
                let all: BTreeSet<Service> = STEPS.into_iter().collect();
                self.init = Some((cmd.id, all, self.ticks, credit, stock));
                self.send_inits();
            }
            Op::SagaOrder(order) => {
                let saga = order.saga;
                self.waiting.entry(saga).or_default().push(cmd.id);
                if self.ended.contains_key(&saga) {
                    self.answer(saga);
                } else if !self.running.contains_key(&saga) {
                    if self.choreographed {
                        self.choreo_start(order);
                    } else {
                        self.begin(order);
                    }
                }
            }
            Op::SagaRestock(r) => self.start_supply(Supply::from(&r), cmd.id),
            Op::SagaTopUp(t) => self.start_supply(Supply::from(&t), cmd.id),
            Op::SagaRead => {
                self.next_read += 1;
                self.reads.insert(
                    self.next_read,
                    Reading {
                        rid: cmd.id,
                        since: self.ticks,
                        asked: false,
                        last_send: 0,
                        states: BTreeMap::new(),
                    },
                );
                self.progress_reads();
            }
            _ => {
                let e = "saga serves only the saga workload".to_string();
                self.out.replies.push((cmd.id, Reply::Done(Err(e))));
            }
        }
    }

    /// Forwards a restock or top-up to its service; the client hears the
    /// service's answer. A retry (same id) joins the waiting clients.
    pub(super) fn start_supply(&mut self, s: Supply, rid: RequestId) {
        let to = self.host_of(s.service);
        let id = s.id;
        let now = self.ticks;
        let e = self
            .supplying
            .entry(id)
            .or_insert_with(|| (s.clone(), Vec::new(), now));
        e.1.push(rid);
        e.2 = now;
        self.send(to, Message::Supply(s));
    }

    pub(super) fn on_supplied(&mut self, id: u64, result: StepResult) {
        let Some((s, rids, _)) = self.supplying.remove(&id) else {
            return; // a duplicate answer
        };
        for rid in rids {
            let out = match &result {
                Ok(()) => Ok(json!({"id": id, "units": s.units})),
                Err(e) => Err(e.clone()),
            };
            self.out.replies.push((rid, Reply::Done(out)));
        }
    }

    pub(super) fn send_inits(&mut self) {
        let Some((_, left, _, credit, stock)) = self.init.clone() else {
            return;
        };
        for s in left {
            let values = match s {
                Service::Credit => credit.clone(),
                Service::Stock => stock.clone(),
                Service::Ship => Vec::new(),
            };
            let to = self.host_of(s);
            self.send(to, Message::Init { service: s, values });
        }
    }

    pub(super) fn on_init_done(&mut self, service: Service) {
        let Some((rid, left, ..)) = self.init.as_mut() else {
            return;
        };
        left.remove(&service);
        if left.is_empty() {
            let rid = *rid;
            self.init = None;
            self.out.replies.push((rid, Reply::Done(Ok(json!("ok")))));
        }
    }

    /// Orchestrator: a new saga, logged before its first step is sent.
    pub(super) fn begin(&mut self, order: Order) {
        let saga = order.saga;
        if self.bugs.send_before_log {
            self.unlogged.insert(order.saga, order.clone());
        } else {
            self.out.records.push(Record::Begin(order.clone()));
        }
        self.running.insert(
            order.saga,
            Running {
                order,
                phase: Phase::Forward(0),
                last_send: self.ticks,
            },
        );
        self.send_step(saga);
    }

    pub(super) fn send_step(&mut self, saga: SagaId) {
        let Some(r) = self.running.get_mut(&saga) else {
            return;
        };
        r.last_send = self.ticks;
        let (step, compensate) = match &r.phase {
            Phase::Forward(i) => (*i, false),
            Phase::Compensating(i, _) => (*i, true),
        };
        let order = r.order.clone();
        let to = Self::host(&self.config.peers, STEPS[step]);
        self.send(
            to,
            Message::Do {
                order,
                step,
                compensate,
            },
        );
    }

    pub(super) fn on_result(
        &mut self,
        saga: SagaId,
        step: usize,
        compensate: bool,
        result: StepResult,
    ) {
        if self.choreographed {
            return;
        }
        if let Some(o) = self.unlogged.remove(&saga) {
            self.out.records.push(Record::Begin(o));
        }
        let Some(r) = self.running.get(&saga) else {
            return;
        };
        match (r.phase.clone(), compensate) {
            (Phase::Forward(i), false) if i == step => match result {
                Ok(()) => {
                    self.out.records.push(Record::Done { saga, step });
                    if step + 1 == STEPS.len() {
                        self.end(saga, true, String::new());
                    } else {
                        self.set_phase(saga, Phase::Forward(step + 1));
                    }
                }
                Err(why) => {
                    self.out.records.push(Record::Failed {
                        saga,
                        step,
                        why: why.clone(),
                    });
                    // Compensate the steps done, last first (the failed
                    // step itself had no effect).
                    let first = if self.bugs.compensate_skip_first {
                        1
                    } else {
                        0
                    };
                    if step > first {
                        self.set_phase(saga, Phase::Compensating(step - 1, why));
                    } else {
                        self.end(saga, false, why);
                    }
                }
            },
            (Phase::Compensating(i, why), true) if i == step => {
                self.out.records.push(Record::Compensated { saga, step });
                let first = if self.bugs.compensate_skip_first {
                    1
                } else {
                    0
                };
                if step > first {
                    self.set_phase(saga, Phase::Compensating(step - 1, why));
                } else {
                    self.end(saga, false, why);
                }
            }
            _ => {} // a duplicate or stale answer
        }
    }

    pub(super) fn set_phase(&mut self, saga: SagaId, phase: Phase) {
        if let Some(r) = self.running.get_mut(&saga) {
            r.phase = phase;
        }
        self.send_step(saga);
    }

    pub(super) fn progress_reads(&mut self) {
        let quiet = self.running.is_empty();
        let now = self.ticks;
        let wait = self.read_wait();
        // States are large (every ledger): ask again rarely, so a slow
        // answer is not outrun by its own retransmissions.
        let r = self.config.election_ticks.max(1);
        let peers = self.config.peers.clone();
        let mut ask = Vec::new();
        for (n, rd) in self.reads.iter_mut() {
            if !rd.asked && (quiet || now.saturating_sub(rd.since) >= wait) {
                rd.asked = true;
                rd.last_send = now;
                ask.push(*n);
            } else if rd.asked && now.saturating_sub(rd.last_send) >= r {
                rd.last_send = now;
                ask.push(*n);
            }
        }
        for n in ask {
            for &p in &peers {
                if self
                    .reads
                    .get(&n)
                    .is_some_and(|r| !r.states.contains_key(&p))
                {
                    self.send(p, Message::Query { n });
                }
            }
        }
        self.finish_reads();
    }

    pub(super) fn finish_reads(&mut self) {
        let n = self.config.peers.len();
        let mut done = Vec::new();
        let full: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.asked && r.states.len() == n)
            .map(|(k, _)| *k)
            .collect();
        for k in full {
            let Some(rd) = self.reads.remove(&k) else {
                continue;
            };
            {
                let mut services = serde_json::Map::new();
                for (s, v) in rd.states.values().flatten() {
                    services.insert(s.name().to_string(), v.clone());
                }
                let sagas: serde_json::Map<String, Value> = self
                    .ended
                    .iter()
                    .map(|(k, (c, _))| {
                        let s = if *c { "committed" } else { "compensated" };
                        (k.to_string(), json!(s))
                    })
                    .chain(
                        self.running
                            .iter()
                            .map(|(k, r)| (k.to_string(), json!(phase_name(&r.phase)))),
                    )
                    .collect();
                let mode = if self.choreographed {
                    "choreographed"
                } else {
                    "orchestrated"
                };
                done.push((
                    rd.rid,
                    json!({"mode": mode, "sagas": sagas, "services": services}),
                ));
            }
        }
        for (rid, v) in done {
            self.out.replies.push((rid, Reply::Done(Ok(v))));
        }
    }

    pub(super) fn entry_tick(&mut self) {
        if self.init.is_some() && self.ticks.is_multiple_of(self.retransmit_ticks()) {
            self.send_inits();
        }
        if !self.choreographed {
            let now = self.ticks;
            let r = self.retransmit_ticks();
            let due: Vec<SagaId> = self
                .running
                .iter()
                .filter(|(_, s)| now.saturating_sub(s.last_send) >= r)
                .map(|(k, _)| *k)
                .collect();
            for saga in due {
                self.send_step(saga);
            }
        }
        let now = self.ticks;
        let r = self.retransmit_ticks();
        let due: Vec<Supply> = self
            .supplying
            .values_mut()
            .filter(|(_, _, last)| now.saturating_sub(*last) >= r)
            .map(|(s, _, last)| {
                *last = now;
                s.clone()
            })
            .collect();
        for s in due {
            let to = self.host_of(s.service);
            self.send(to, Message::Supply(s));
        }
        if !self.reads.is_empty() {
            self.progress_reads();
        }
    }

    pub(super) fn outbox_tick(&mut self) {
        let now = self.ticks;
        let r = self.retransmit_ticks();
        let mut resend = Vec::new();
        for (id, (to, e, last)) in self.outbox.iter_mut() {
            if now.saturating_sub(*last) >= r {
                *last = now;
                resend.push((*to, *id, e.clone()));
            }
        }
        for (to, id, event) in resend {
            self.send(to, Message::Event { id, event });
        }
    }
}
