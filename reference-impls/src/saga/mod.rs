//! Sagas (Garcia-Molina & Salem, "Sagas", SIGMOD 1987) as a pure
//! [`Core`]: an order is a long-lived transaction split into three local
//! transactions at three services, each with a **compensating
//! transaction** that semantically undoes it:
//!
//! | step | service | forward action | compensation | business failure |
//! |---|---|---|---|---|
//! | 0 | `reserve-credit` | debit the customer's credit by `amount` | refund it | too little credit |
//! | 1 | `book-stock` | take `qty` of the item | put it back | out of stock |
//! | 2 | `ship` | create a shipment | cancel it | no route to `dest` (0) |
//!
//! Service `i` lives on `peers[(i + 1) % n]` (3 nodes: credit on node 2,
//! stock on node 3, ship on node 1, so the orchestrator on node 1 reaches
//! the first two steps over the network). A saga
//! either runs every step (**committed**) or, when a step fails, runs the
//! compensations of every step already done in reverse order
//! (**compensated**); the client hears the outcome only then, so `ok`
//! means committed and `fail` means compensated.
//!
//! Messages are delivered **at least once**: every sender re-sends until it
//! hears back, and the network duplicates. Each service therefore keeps an
//! **idempotency key** per saga (the saga id, one per service and kind):
//! a forward action or a compensation that was already applied answers its
//! first result again instead of applying twice; a compensation that
//! arrives before its action (or instead of it) leaves a tombstone, so a
//! late action is refused (Garcia-Molina & Salem §5; Richardson,
//! "Microservices Patterns", 2018, ch. 4: countermeasures).
//!
//! Two variants (`--option mode=choreographed`; orchestrated by default):
//!
//! - **Orchestrated**: node 1's **orchestrator** drives each saga with a
//!   durable saga log. It force-logs [`Record::Begin`] before sending the
//!   first step, [`Record::Done`] / [`Record::Failed`] as steps answer,
//!   [`Record::Compensated`] per compensation and [`Record::End`]; a
//!   restarted orchestrator resumes every saga without an end record
//!   (re-sending its current step: idempotent at the service).
//! - **Choreographed**: no coordinator; each service reacts to the
//!   previous one's events and publishes its own through a **transactional
//!   outbox**: the event is part of the same durable record as the local
//!   transaction, and re-sent until the receiver acknowledges it (also
//!   after a restart). The last step's failure travels backwards as
//!   compensation events (`ShipFailed` → stock released → `StockReleased`
//!   → credit refunded). The credit service is the entry: it takes the
//!   client's order, and records the saga's end when `Shipped` or a
//!   compensation event reaches it.
//!
//! Client requests go to the **entry**: node 1 (the orchestrator), or in
//! choreography the credit service's node; the others answer `NotLeader`
//! with the entry as the hint.
//! A retried order (same saga id) is answered from the log, waits for a
//! running saga, or resumes a forgotten one (its steps are idempotent).
//! The final read ([`Op::SagaRead`]) waits until no saga is running at
//! the entry (at most `6 × election_ticks`), then collects every service's
//! balances and ledger of applied actions and compensations.

mod entry;
mod service;
#[cfg(test)]
mod tests;

use crate::core::{Config, Core, Input, NodeId, Ready, Reply, Status};
use crate::kv::{Command, Op, RequestId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One line about the protocol (`faultline-node --list`).
pub const ABOUT: &str = "sagas over three services (reserve-credit, book-stock, ship: one per node) with compensations and idempotency keys; orchestrated by node 1, or choreographed with --option mode=choreographed (saga workload only)";

// The sagas' seeded bugs (`--bug NAME`).
crate::seeded_bugs! {
    "saga";
    refund_without_key = "refund-without-key":
        "the credit service's refund ignores the idempotency key: every refund message it receives pays the customer back, so a retried or duplicated compensation refunds twice",
    send_before_log = "send-before-log":
        "the orchestrator sends a saga's first step before logging the saga (the begin record is written when the step answers), so a crash in between forgets a saga whose credit is reserved: it never ends",
    compensate_skip_first = "compensate-skip-first":
        "the orchestrator's compensation loop stops one step early and never compensates step 0, so a failed order keeps the customer's credit",
    volatile_outbox = "volatile-outbox":
        "choreography: a service keeps the compensation events it publishes in memory instead of its durable outbox, so after a crash it never passes them on and the saga stays half compensated",
    volatile_supply = "volatile-supply":
        "the stock and credit services apply a restock or top-up and acknowledge it without logging it, so a crash forgets an acknowledged restock (a lost restock)",
    ;
    sim_only:
}

/// The deployed setup: customers and items, each customer's credit and
/// each item's stock (the saga workload's orders use ids `0..3`).
pub const CUSTOMERS: usize = 3;
pub const ITEMS: usize = 3;
pub const INITIAL_CREDIT: i64 = 3000;
pub const INITIAL_STOCK: i64 = 300;

/// The setup request of the deployed services.
pub fn initial() -> Op {
    Op::SagaInit {
        credit: vec![INITIAL_CREDIT; CUSTOMERS],
        stock: vec![INITIAL_STOCK; ITEMS],
    }
}

/// Names a saga (the order id: unique per run, the idempotency key of each
/// of its steps).
pub type SagaId = u64;

/// One order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub saga: SagaId,
    pub customer: u32,
    pub item: u32,
    pub qty: i64,
    pub amount: i64,
    /// Destination; 0 has no route (the ship step's business failure).
    pub dest: u32,
}

/// A restock: `qty` more of `item` (the stock service). `id` is its
/// idempotency key, unique per run among orders and supplies alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restock {
    pub id: u64,
    pub item: u32,
    pub qty: i64,
}

/// A top-up: `amount` more credit for `customer` (the credit service).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUp {
    pub id: u64,
    pub customer: u32,
    pub amount: i64,
}

/// A restock or a top-up as the services see it: `units` added to
/// `account` of `service`, once per `id`. Not a saga: one local
/// transaction at one service, which the entry forwards and re-sends until
/// the service answers (at-least-once, so keyed like a saga's steps).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supply {
    pub id: u64,
    pub service: Service,
    pub account: u32,
    pub units: i64,
}

impl From<&Restock> for Supply {
    fn from(r: &Restock) -> Supply {
        Supply {
            id: r.id,
            service: Service::Stock,
            account: r.item,
            units: r.qty,
        }
    }
}

impl From<&TopUp> for Supply {
    fn from(t: &TopUp) -> Supply {
        Supply {
            id: t.id,
            service: Service::Credit,
            account: t.customer,
            units: t.amount,
        }
    }
}

/// The services, in step order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Service {
    Credit,
    Stock,
    Ship,
}

pub const STEPS: [Service; 3] = [Service::Credit, Service::Stock, Service::Ship];

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Credit => "reserve-credit",
            Service::Stock => "book-stock",
            Service::Ship => "ship",
        }
    }

    pub fn step(self) -> usize {
        self as usize
    }

    /// What one application of the step moves: credit, items, shipments.
    fn units(self, o: &Order) -> i64 {
        match self {
            Service::Credit => o.amount,
            Service::Stock => o.qty,
            Service::Ship => 1,
        }
    }
}

/// One line of a service's ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// The forward action took effect.
    Action,
    /// The forward action was refused (a business failure): no effect.
    Refused,
    /// A compensation: `units` put back (0 when there was nothing to undo,
    /// which also leaves a tombstone against a late action).
    Compensation,
    /// A restock (stock) or top-up (credit): `units` added; the entry's
    /// `saga` is the supply's id.
    Supply,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The idempotency key: the saga id, or a supply's id.
    pub saga: SagaId,
    pub kind: EntryKind,
    /// Credit, items or shipments moved.
    pub units: i64,
    /// The customer, item or destination the units belong to.
    pub account: u32,
}

/// Choreography's events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    CreditReserved(Order),
    StockBooked(Order),
    Shipped(Order),
    /// Compensation events, travelling backwards.
    StockFailed(Order, String),
    ShipFailed(Order, String),
    StockReleased(Order, String),
}

impl Event {
    fn is_compensation(&self) -> bool {
        matches!(
            self,
            Event::StockFailed(..) | Event::ShipFailed(..) | Event::StockReleased(..)
        )
    }
}

/// What a service's step answered.
pub type StepResult = Result<(), String>;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Message {
    /// Setup: a service's initial values.
    Init {
        service: Service,
        values: Vec<i64>,
    },
    InitDone {
        service: Service,
    },
    /// Orchestrator → service: run (or compensate) a step.
    Do {
        order: Order,
        step: usize,
        compensate: bool,
    },
    /// Service → orchestrator.
    Result {
        saga: SagaId,
        step: usize,
        compensate: bool,
        result: StepResult,
    },
    /// Choreography: an outbox event (`id` is the sender's outbox number).
    Event {
        id: u64,
        event: Event,
    },
    Ack {
        id: u64,
    },
    /// Entry → service: a restock or top-up (re-sent until answered).
    Supply(Supply),
    /// Service → entry: the supply's result (a repeat answers the first).
    Supplied {
        id: u64,
        result: StepResult,
    },
    /// The final read: node 1 asks every node for its services' state.
    Query {
        n: u64,
    },
    State {
        n: u64,
        services: Vec<(Service, Value)>,
    },
}

/// One durable record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Record {
    /// A service was set up.
    Init { service: Service, values: Vec<i64> },
    /// A service applied (or refused) an action or a compensation; in
    /// choreography with the event it publishes (the transactional outbox).
    Applied {
        service: Service,
        order: Order,
        kind: EntryKind,
        units: i64,
        why: String,
        publish: Option<(u64, NodeId, Event)>,
    },
    /// Choreography: the outbox event was acknowledged.
    Delivered { id: u64 },
    /// A service applied a restock or top-up.
    Supplied(Supply),
    /// Orchestrator: a saga began (step 0 started).
    Begin(Order),
    /// Orchestrator: step done (the next one started).
    Done { saga: SagaId, step: usize },
    /// Orchestrator: step failed; compensating the steps before it.
    Failed {
        saga: SagaId,
        step: usize,
        why: String,
    },
    /// Orchestrator: a step's compensation is done.
    Compensated { saga: SagaId, step: usize },
    /// The saga ended (orchestrator, or the choreography's entry service).
    End {
        saga: SagaId,
        committed: bool,
        why: String,
    },
}

/// Per saga, what a service did: the idempotency key's table.
#[derive(Clone, Debug, Default)]
struct Applied {
    /// The forward action's result, once applied or refused.
    action: Option<StepResult>,
    compensated: bool,
}

#[derive(Clone, Debug, Default)]
struct ServiceState {
    initialized: bool,
    initial: Vec<i64>,
    /// Credit per customer, stock per item (ship: unused).
    values: Vec<i64>,
    shipments: BTreeSet<SagaId>,
    applied: BTreeMap<SagaId, Applied>,
    /// Supplies applied: the idempotency key of restocks and top-ups.
    supplied: BTreeSet<u64>,
    ledger: Vec<Entry>,
}

/// Where an orchestrated saga is.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// Running step `i` forward.
    Forward(usize),
    /// Compensating step `i` (counting down); `why` is the failure.
    Compensating(usize, String),
}

#[derive(Clone, Debug)]
struct Running {
    order: Order,
    phase: Phase,
    last_send: u64,
}

/// A setup request: the client, the services not yet set up, the tick it
/// came, credit and stock.
type Setup = (RequestId, BTreeSet<Service>, u64, Vec<i64>, Vec<i64>);

/// A final read waiting for quiet, then for every node's state.
#[derive(Clone, Debug)]
struct Reading {
    rid: RequestId,
    since: u64,
    asked: bool,
    last_send: u64,
    states: BTreeMap<NodeId, Vec<(Service, Value)>>,
}

pub struct Saga {
    config: Config,
    bugs: Bugs,
    entry: NodeId,
    choreographed: bool,
    ticks: u64,
    out: Ready<Message, Record>,
    local: VecDeque<(NodeId, Message)>,

    // Services hosted here.
    services: BTreeMap<Service, ServiceState>,

    // Node 1: sagas (orchestrator, or choreography's entry).
    running: BTreeMap<SagaId, Running>,
    ended: BTreeMap<SagaId, (bool, String)>,
    waiting: BTreeMap<SagaId, Vec<RequestId>>,
    /// `send-before-log`: begin records not yet handed to the shell.
    unlogged: BTreeMap<SagaId, Order>,
    init: Option<Setup>,
    reads: BTreeMap<u64, Reading>,
    next_read: u64,
    /// Supplies forwarded to their service and not yet answered: the
    /// clients waiting and the last send (volatile: a client's retry after
    /// a restart forwards it again, and the service's key makes that safe).
    supplying: BTreeMap<u64, (Supply, Vec<RequestId>, u64)>,

    // Choreography: the outbox.
    outbox: BTreeMap<u64, (NodeId, Event, u64)>,
    next_outbox: u64,
}

impl Saga {
    /// The node hosting `s`.
    pub fn host(peers: &[NodeId], s: Service) -> NodeId {
        peers[(s.step() + 1) % peers.len()]
    }

    pub fn is_entry(&self) -> bool {
        self.config.id == self.entry
    }

    /// Sagas still running at node 1.
    pub fn pending(&self) -> Vec<SagaId> {
        self.running.keys().copied().collect()
    }

    /// Ended sagas: id → committed.
    pub fn ended(&self) -> BTreeMap<SagaId, bool> {
        self.ended.iter().map(|(k, (c, _))| (*k, *c)).collect()
    }

    /// A hosted service's ledger.
    pub fn ledger(&self, s: Service) -> Option<&[Entry]> {
        self.services.get(&s).map(|st| st.ledger.as_slice())
    }

    /// A hosted service's values (credit per customer, stock per item;
    /// ship: one per shipment).
    pub fn values(&self, s: Service) -> Option<Vec<i64>> {
        self.services.get(&s).map(|st| match s {
            Service::Ship => vec![st.shipments.len() as i64],
            _ => st.values.clone(),
        })
    }

    /// Choreography: undelivered outbox events.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    fn retransmit_ticks(&self) -> u64 {
        self.config.heartbeat_ticks.max(1)
    }

    fn read_wait(&self) -> u64 {
        6 * self.config.election_ticks.max(1)
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        if to == self.config.id {
            let me = self.config.id;
            self.local.push_back((me, msg));
        } else {
            self.out.messages.push((to, msg));
        }
    }

    fn host_of(&self, s: Service) -> NodeId {
        Self::host(&self.config.peers, s)
    }

    fn drain_local(&mut self) {
        while let Some((from, m)) = self.local.pop_front() {
            self.handle(from, m);
        }
    }

    fn handle(&mut self, from: NodeId, msg: Message) {
        match msg {
            Message::Init { service, values } => {
                if let Some(st) = self.services.get(&service)
                    && !st.initialized
                {
                    self.out.records.push(Record::Init {
                        service,
                        values: values.clone(),
                    });
                    self.apply_init(service, values);
                }
                if self.services.contains_key(&service) {
                    self.send(from, Message::InitDone { service });
                }
            }
            Message::InitDone { service } => self.on_init_done(service),
            Message::Do {
                order,
                step,
                compensate,
            } => {
                let Some(&service) = STEPS.get(step) else {
                    return;
                };
                if !self.services.contains_key(&service) {
                    return;
                }
                let saga = order.saga;
                let result = if compensate {
                    self.compensate(service, &order, None);
                    Ok(())
                } else {
                    self.forward(service, &order, |_| None)
                };
                self.send(
                    from,
                    Message::Result {
                        saga,
                        step,
                        compensate,
                        result,
                    },
                );
            }
            Message::Result {
                saga,
                step,
                compensate,
                result,
            } if self.is_entry() => self.on_result(saga, step, compensate, result),
            Message::Supply(s) => {
                // Not set up yet: no answer, so the entry asks again.
                if let Some(result) = self.supply(&s) {
                    self.send(from, Message::Supplied { id: s.id, result });
                }
            }
            Message::Supplied { id, result } if self.is_entry() => self.on_supplied(id, result),
            Message::Event { id, event } => {
                self.on_event(event);
                self.send(from, Message::Ack { id });
            }
            Message::Ack { id } if self.outbox.remove(&id).is_some() => {
                self.out.records.push(Record::Delivered { id });
            }
            Message::Query { n } => {
                let services = self
                    .services
                    .iter()
                    .map(|(s, st)| (*s, service_json(*s, st)))
                    .collect();
                self.send(from, Message::State { n, services });
            }
            Message::State { n, services } => {
                if let Some(r) = self.reads.get_mut(&n)
                    && r.asked
                {
                    r.states.insert(from, services);
                }
                self.finish_reads();
            }
            _ => {}
        }
    }

    // ---- choreography ----

    fn on_event(&mut self, event: Event) {
        let stock = self.host_of(Service::Stock);
        let ship = self.host_of(Service::Ship);
        let credit = self.host_of(Service::Credit);
        match event {
            Event::CreditReserved(o) if self.services.contains_key(&Service::Stock) => {
                let ev = o.clone();
                let _ = self.forward(Service::Stock, &o, move |r| match r {
                    Ok(()) => Some((ship, Event::StockBooked(ev))),
                    Err(e) => Some((credit, Event::StockFailed(ev, e.clone()))),
                });
            }
            Event::StockBooked(o) if self.services.contains_key(&Service::Ship) => {
                let ev = o.clone();
                let _ = self.forward(Service::Ship, &o, move |r| match r {
                    Ok(()) => Some((credit, Event::Shipped(ev))),
                    Err(e) => Some((stock, Event::ShipFailed(ev, e.clone()))),
                });
            }
            Event::ShipFailed(o, why) if self.services.contains_key(&Service::Stock) => {
                let ev = Event::StockReleased(o.clone(), why);
                self.compensate(Service::Stock, &o, Some((credit, ev)));
            }
            Event::StockFailed(o, why) | Event::StockReleased(o, why)
                if self.services.contains_key(&Service::Credit) =>
            {
                self.compensate(Service::Credit, &o, None);
                self.end(o.saga, false, why);
            }
            Event::Shipped(o) if self.is_entry() => self.end(o.saga, true, String::new()),
            _ => {}
        }
    }

    /// Choreography's entry: the credit step, then the event.
    fn choreo_start(&mut self, order: Order) {
        let stock = self.host_of(Service::Stock);
        let ev = order.clone();
        self.running.insert(
            order.saga,
            Running {
                order: order.clone(),
                phase: Phase::Forward(0),
                last_send: self.ticks,
            },
        );
        let r = self.forward(Service::Credit, &order, move |r| {
            r.is_ok().then_some((stock, Event::CreditReserved(ev)))
        });
        if let Err(e) = r {
            // Nothing took effect: the saga ends compensated at once.
            self.end(order.saga, false, e);
        }
    }
}

/// Why a step refused, named by its service first (`book-stock: out of
/// stock: …`): the client's `fail` carries it, and per-step counts of a
/// run (`faultline_checker::saga::step_outcomes`) read the step from it.
fn refusal(service: Service, o: &Order, st: &ServiceState) -> String {
    let why = match service {
        Service::Credit => format!(
            "insufficient credit: customer {} has {:?}, the order needs {}",
            o.customer,
            st.values.get(o.customer as usize),
            o.amount
        ),
        Service::Stock => format!(
            "out of stock: item {} has {:?}, the order needs {}",
            o.item,
            st.values.get(o.item as usize),
            o.qty
        ),
        Service::Ship => format!("no route to destination {}", o.dest),
    };
    format!("{}: {why}", service.name())
}

fn phase_name(p: &Phase) -> String {
    match p {
        Phase::Forward(i) => format!("pending: step {i} ({}) started", STEPS[*i].name()),
        Phase::Compensating(i, _) => {
            format!("pending: compensating step {i} ({})", STEPS[*i].name())
        }
    }
}

/// A service's state for the final read: its initial and current values
/// and its ledger.
fn service_json(s: Service, st: &ServiceState) -> Value {
    let values = match s {
        Service::Ship => vec![st.shipments.len() as i64],
        _ => st.values.clone(),
    };
    let initial = match s {
        Service::Ship => vec![0],
        _ => st.initial.clone(),
    };
    json!({"initial": initial, "current": values, "ledger": st.ledger})
}

impl Core for Saga {
    type Message = Message;
    type Record = Record;

    fn recover(config: Config, records: Vec<Record>) -> Self {
        let choreographed = config.option("mode") == Some("choreographed");
        let entry = if choreographed {
            Self::host(&config.peers, Service::Credit)
        } else {
            config.peers.iter().copied().min().unwrap_or(config.id)
        };
        let services = STEPS
            .into_iter()
            .filter(|s| Self::host(&config.peers, *s) == config.id)
            .map(|s| (s, ServiceState::default()))
            .collect();
        let mut n = Saga {
            entry,
            choreographed,
            ticks: 0,
            out: Ready::default(),
            local: VecDeque::new(),
            services,
            running: BTreeMap::new(),
            ended: BTreeMap::new(),
            waiting: BTreeMap::new(),
            unlogged: BTreeMap::new(),
            init: None,
            reads: BTreeMap::new(),
            next_read: 0,
            supplying: BTreeMap::new(),
            outbox: BTreeMap::new(),
            next_outbox: 0,
            bugs: Bugs::from_config(&config),
            config,
        };
        for r in records {
            match r {
                Record::Init { service, values } => n.apply_init(service, values),
                Record::Applied {
                    service,
                    order,
                    kind,
                    units,
                    publish,
                    why,
                } => {
                    if let Some((id, to, e)) = publish {
                        n.outbox.insert(id, (to, e, 0));
                        n.next_outbox = n.next_outbox.max(id + 1);
                    }
                    // Choreography's entry: a reserved credit starts a saga.
                    if n.choreographed
                        && service == Service::Credit
                        && kind == EntryKind::Action
                        && n.is_entry()
                    {
                        n.running.entry(order.saga).or_insert(Running {
                            order: order.clone(),
                            phase: Phase::Forward(0),
                            last_send: 0,
                        });
                    }
                    n.apply_record(service, &order, kind, units, &why);
                }
                Record::Supplied(s) => n.apply_supply(&s),
                Record::Delivered { id } => {
                    n.outbox.remove(&id);
                    n.next_outbox = n.next_outbox.max(id + 1);
                }
                Record::Begin(order) => {
                    n.running.insert(
                        order.saga,
                        Running {
                            order,
                            phase: Phase::Forward(0),
                            last_send: 0,
                        },
                    );
                }
                Record::Done { saga, step } => {
                    if let Some(r) = n.running.get_mut(&saga) {
                        r.phase = Phase::Forward(step + 1);
                    }
                }
                Record::Failed { saga, step, why } => {
                    if let Some(r) = n.running.get_mut(&saga) {
                        // `step - 1`; a failure at step 0 is followed by End.
                        r.phase = Phase::Compensating(step.saturating_sub(1), why);
                    }
                }
                Record::Compensated { saga, step } => {
                    if let Some(r) = n.running.get_mut(&saga)
                        && let Phase::Compensating(_, why) = &r.phase
                    {
                        r.phase = Phase::Compensating(step.saturating_sub(1), why.clone());
                    }
                }
                Record::End {
                    saga,
                    committed,
                    why,
                } => {
                    n.running.remove(&saga);
                    n.ended.insert(saga, (committed, why));
                }
            }
        }
        // Events not yet acknowledged go out again at once.
        let unacked: Vec<(u64, NodeId, Event)> = n
            .outbox
            .iter()
            .map(|(id, (to, e, _))| (*id, *to, e.clone()))
            .collect();
        for (id, to, event) in unacked {
            n.send(to, Message::Event { id, event });
        }
        if n.is_entry() && !n.choreographed {
            // Resume every saga without an end record.
            let all: Vec<SagaId> = n.running.keys().copied().collect();
            for saga in all {
                n.send_step(saga);
            }
        }
        n.drain_local();
        n
    }

    fn step(&mut self, input: Input<Message>) {
        match input {
            Input::Tick { .. } => {
                self.ticks += 1;
                if self.is_entry() {
                    self.entry_tick();
                }
                self.outbox_tick();
            }
            Input::Message { from, msg } => self.handle(from, msg),
            Input::Request(cmd) => self.on_request(cmd),
        }
        self.drain_local();
    }

    fn ready(&mut self) -> Ready<Message, Record> {
        std::mem::take(&mut self.out)
    }

    fn status(&self) -> Status {
        Status {
            role: if self.is_entry() { "leader" } else { "service" },
            term: 0,
            leader: Some(self.entry),
            commit: self.ended.len() as u64,
        }
    }
}
