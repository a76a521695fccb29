//! The three services' side of a saga: forward actions and compensations,
//! each applied at most once per saga id (the idempotency key), and the
//! records that make them durable.

use super::*;

impl Saga {
    pub(super) fn apply_init(&mut self, service: Service, values: Vec<i64>) {
        if let Some(st) = self.services.get_mut(&service)
            && !st.initialized
        {
            st.initialized = true;
            st.initial = values.clone();
            st.values = values;
        }
    }

    /// Replays (or applies) one `Applied` record's effect on the state.
    pub(super) fn apply_record(
        &mut self,
        service: Service,
        order: &Order,
        kind: EntryKind,
        units: i64,
        why: &str,
    ) {
        let Some(st) = self.services.get_mut(&service) else {
            return;
        };
        let account = match service {
            Service::Credit => order.customer,
            Service::Stock => order.item,
            Service::Ship => order.dest,
        };
        let a = st.applied.entry(order.saga).or_default();
        match kind {
            EntryKind::Action => {
                a.action = Some(Ok(()));
                match service {
                    Service::Ship => {
                        st.shipments.insert(order.saga);
                    }
                    _ => {
                        if let Some(v) = st.values.get_mut(account as usize) {
                            *v -= units;
                        }
                    }
                }
            }
            EntryKind::Refused => {
                a.action = Some(Err(why.to_string()));
            }
            // Supplies have their own record (`apply_supply`).
            EntryKind::Supply => return,
            EntryKind::Compensation => {
                a.compensated = true;
                if units > 0 {
                    match service {
                        Service::Ship => {
                            st.shipments.remove(&order.saga);
                        }
                        _ => {
                            if let Some(v) = st.values.get_mut(account as usize) {
                                *v += units;
                            }
                        }
                    }
                }
            }
        }
        st.ledger.push(Entry {
            saga: order.saga,
            kind,
            units,
            account,
        });
    }

    /// Logs and applies an `Applied` record.
    pub(super) fn record(
        &mut self,
        service: Service,
        order: &Order,
        kind: EntryKind,
        units: i64,
        why: String,
        publish: Option<(NodeId, Event)>,
    ) {
        let publish = publish.map(|(to, e)| {
            let id = self.next_outbox;
            self.next_outbox += 1;
            self.outbox.insert(id, (to, e.clone(), self.ticks));
            (id, to, e)
        });
        // The seeded bug: compensation events stay in memory only.
        let durable = match &publish {
            Some((_, _, e)) if e.is_compensation() && self.bugs.volatile_outbox => None,
            p => p.clone(),
        };
        let why_copy = why.clone();
        self.out.records.push(Record::Applied {
            service,
            order: order.clone(),
            kind,
            units,
            why,
            publish: durable,
        });
        if let Some((id, to, e)) = publish {
            self.send(to, Message::Event { id, event: e });
        }
        self.apply_record(service, order, kind, units, &why_copy);
    }

    /// The forward action, once per saga: a repeat answers the first
    /// result. `next` gives the event to publish (choreography) for the
    /// result.
    pub(super) fn forward(
        &mut self,
        service: Service,
        order: &Order,
        next: impl FnOnce(&StepResult) -> Option<(NodeId, Event)>,
    ) -> StepResult {
        let Some(st) = self.services.get(&service) else {
            return Err(format!("{} is not on this node", service.name()));
        };
        if let Some(a) = st.applied.get(&order.saga) {
            if let Some(r) = &a.action {
                return r.clone();
            }
            if a.compensated {
                // The tombstone: compensated before it ever ran.
                return Err(format!(
                    "{}: saga {} was already compensated",
                    service.name(),
                    order.saga
                ));
            }
        }
        let units = service.units(order);
        let ok = match service {
            Service::Credit | Service::Stock => {
                let acct = if service == Service::Credit {
                    order.customer
                } else {
                    order.item
                };
                units >= 0 && st.values.get(acct as usize).is_some_and(|v| *v >= units)
            }
            Service::Ship => order.dest != 0,
        };
        let result = if ok {
            Ok(())
        } else {
            Err(refusal(service, order, st))
        };
        let publish = next(&result);
        let (kind, why) = match &result {
            Ok(()) => (EntryKind::Action, String::new()),
            Err(e) => (EntryKind::Refused, e.clone()),
        };
        self.record(service, order, kind, units, why, publish);
        result
    }

    /// The compensation, once per saga (unless `refund-without-key`):
    /// undoes the action if it took effect, else leaves a tombstone.
    /// Returns true if it was applied now.
    pub(super) fn compensate(
        &mut self,
        service: Service,
        order: &Order,
        publish: Option<(NodeId, Event)>,
    ) -> bool {
        let Some(st) = self.services.get(&service) else {
            return false;
        };
        let a = st.applied.get(&order.saga).cloned().unwrap_or_default();
        let keyed = !(service == Service::Credit && self.bugs.refund_without_key);
        if a.compensated && (keyed || a.action != Some(Ok(()))) {
            return false;
        }
        let units = if a.action == Some(Ok(())) {
            service.units(order)
        } else {
            0
        };
        self.record(
            service,
            order,
            EntryKind::Compensation,
            units,
            String::new(),
            publish,
        );
        true
    }

    /// A restock or top-up, once per id (the idempotency key): a repeat
    /// answers `Ok` again without adding. `None` while the service is not
    /// set up (the entry re-sends). Logged with its effect before the
    /// answer leaves (the Ready contract), unless `volatile-supply`.
    pub(super) fn supply(&mut self, s: &Supply) -> Option<StepResult> {
        let st = self.services.get(&s.service)?;
        if !st.initialized {
            return None;
        }
        if st.supplied.contains(&s.id) {
            return Some(Ok(()));
        }
        if s.service == Service::Ship || s.units <= 0 || st.values.get(s.account as usize).is_none()
        {
            return Some(Err(format!(
                "{}: cannot add {} to account {} (supply {})",
                s.service.name(),
                s.units,
                s.account,
                s.id
            )));
        }
        if !self.bugs.volatile_supply {
            self.out.records.push(Record::Supplied(s.clone()));
        }
        self.apply_supply(s);
        Some(Ok(()))
    }

    /// Replays (or applies) a supply: `units` added, one ledger line.
    pub(super) fn apply_supply(&mut self, s: &Supply) {
        let Some(st) = self.services.get_mut(&s.service) else {
            return;
        };
        if !st.supplied.insert(s.id) {
            return;
        }
        if let Some(v) = st.values.get_mut(s.account as usize) {
            *v += s.units;
        }
        st.ledger.push(Entry {
            saga: s.id,
            kind: EntryKind::Supply,
            units: s.units,
            account: s.account,
        });
    }
}
