//! Live updates of tickets over Server-Sent Events. One PostgreSQL
//! listener per process (`LISTEN zentralink_ticket_events`) hears every
//! ticket event any process writes, reads it once and fans it out to a
//! tokio broadcast channel per watched ticket (made by the first viewer,
//! dropped with the last). A viewer's stream subscribes first, then replays
//! from the table every event after the one it names (`Last-Event-ID`, or
//! `?after=`), then passes the live ones on, skipping any id it sent
//! already: no gap, no duplicate. A viewer that falls behind the channel,
//! and every viewer after the listener lost its connection, reads what it
//! missed from the table. Streams of the tenant's members never carry an
//! internal event (filtered here, on the server). Every keep-alive
//! interval the stream checks that its session still stands (signed in,
//! not expired, still a member of the tenant or still staff) and ends
//! when it does not. Does I/O (PostgreSQL, tasks).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::{Notify, broadcast};
use zentralink_store::tickets::{Heard, TicketEventRecord, TicketId, TicketNotice};
use zentralink_store::{Store, StoreError, TenantId};

use super::transitions::Status;

/// How often a stream sends a keep-alive comment and re-checks its session.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How many events a ticket's channel holds for a slow viewer before the
/// viewer reads the rest from the table.
const CHANNEL_CAPACITY: usize = 256;

/// How long a new viewer waits for the process's listener to be ready.
const LISTENER_READY_WAIT: Duration = Duration::from_secs(10);

/// The longest wait between attempts to (re)connect the listener.
const LISTENER_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// An event as streams send it: rendered to JSON once, for every viewer.
#[derive(Debug)]
pub struct LiveEvent {
    pub id: i64,
    pub internal: bool,
    pub json: String,
}

/// What a page's script reads of an event (`data:` of the SSE event).
#[derive(Debug, Serialize)]
pub struct EventView {
    pub id: i64,
    /// `OPENED`, `COMMENT`, `STATUS` or `ASSIGNED`.
    pub kind: String,
    pub internal: bool,
    pub author: String,
    pub staff: bool,
    pub body: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The statuses' readable names (`STATUS` events).
    pub from_label: Option<String>,
    pub to_label: Option<String>,
    pub assignee: Option<String>,
    pub at: String,
}

impl From<&TicketEventRecord> for EventView {
    fn from(e: &TicketEventRecord) -> Self {
        let author = match (&e.actor_name, e.actor_staff) {
            (Some(name), _) => name.clone(),
            (None, true) => "Support".into(),
            (None, false) => "a former member".into(),
        };
        EventView {
            id: e.id,
            kind: e.kind.clone(),
            internal: e.internal,
            author,
            staff: e.actor_staff,
            body: e.body.clone(),
            from: e.from_status.clone(),
            to: e.to_status.clone(),
            from_label: label(e.from_status.as_deref()),
            to_label: label(e.to_status.as_deref()),
            assignee: e.assignee_email.clone(),
            at: e.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

fn label(status: Option<&str>) -> Option<String> {
    status.map(|s| {
        s.parse::<Status>()
            .map_or_else(|_| s.to_owned(), |s| s.label().to_owned())
    })
}

impl LiveEvent {
    pub fn of(record: &TicketEventRecord) -> LiveEvent {
        LiveEvent {
            id: record.id,
            internal: record.internal,
            json: serde_json::to_string(&EventView::from(record)).unwrap_or_else(|_| "{}".into()),
        }
    }

    fn sse(&self) -> Event {
        Event::default()
            .event("ticket")
            .id(self.id.to_string())
            .data(&self.json)
    }
}

#[derive(Debug)]
struct Channel {
    sender: broadcast::Sender<Arc<LiveEvent>>,
    /// The newest event id sent on the channel.
    last: i64,
}

/// The process's fan-out of ticket events: the listener task and a
/// channel per watched ticket.
#[derive(Debug)]
pub struct TicketHub {
    store: Store,
    channels: Mutex<HashMap<TicketId, Channel>>,
    started: AtomicBool,
    ready: AtomicBool,
    ready_notify: Notify,
    recheck_ms: AtomicU64,
}

/// A viewer's place on a ticket's channel; leaving drops the channel when
/// it was the last viewer.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<TicketHub>,
    ticket: TicketId,
    receiver: Option<broadcast::Receiver<Arc<LiveEvent>>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = self
            .hub
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // New viewers subscribe under this lock: the count cannot grow meanwhile.
        drop(self.receiver.take());
        if channels
            .get(&self.ticket)
            .is_some_and(|c| c.sender.receiver_count() == 0)
        {
            channels.remove(&self.ticket);
        }
    }
}

impl Subscription {
    async fn recv(&mut self) -> Result<Arc<LiveEvent>, broadcast::error::RecvError> {
        match self.receiver.as_mut() {
            Some(r) => r.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl TicketHub {
    pub fn new(store: Store) -> Arc<TicketHub> {
        Arc::new(TicketHub {
            store,
            channels: Mutex::new(HashMap::new()),
            started: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            ready_notify: Notify::new(),
            recheck_ms: AtomicU64::new(u64::try_from(KEEP_ALIVE.as_millis()).unwrap_or(15_000)),
        })
    }

    /// How often streams re-check their session and send a keep-alive
    /// ([`KEEP_ALIVE`] unless changed; tests shorten it).
    pub fn set_keep_alive(&self, every: Duration) {
        let ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(10);
        self.recheck_ms.store(ms, Ordering::Relaxed);
    }

    pub fn keep_alive(&self) -> Duration {
        Duration::from_millis(self.recheck_ms.load(Ordering::Relaxed))
    }

    /// How many tickets have a channel in this process (viewers watching).
    pub fn watched_tickets(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TicketId, Channel>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins a ticket's channel (made now if nobody watches it yet), once
    /// the listener is ready; 503 when it does not get ready in time.
    pub async fn subscribe(self: &Arc<Self>, ticket: TicketId) -> Result<Subscription, StoreError> {
        self.start();
        let ready = tokio::time::timeout(LISTENER_READY_WAIT, async {
            loop {
                let notified = self.ready_notify.notified();
                if self.ready.load(Ordering::Acquire) {
                    return;
                }
                notified.await;
            }
        })
        .await;
        if ready.is_err() {
            return Err(StoreError::Unavailable(
                "the live-update listener is not connected to PostgreSQL".into(),
            ));
        }
        let receiver = self
            .lock()
            .entry(ticket)
            .or_insert_with(|| Channel {
                sender: broadcast::channel(CHANNEL_CAPACITY).0,
                last: 0,
            })
            .sender
            .subscribe();
        Ok(Subscription {
            hub: self.clone(),
            ticket,
            receiver: Some(receiver),
        })
    }

    /// Starts the listener task once per hub.
    fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(250);
            loop {
                let Some(store) = hub.upgrade().map(|h| h.store.clone()) else {
                    return;
                };
                let mut listener = match store.ticket_listener().await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(
                            "tickets: the live-update listener cannot connect ({e}); trying again in {:.1} s",
                            backoff.as_secs_f64()
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(LISTENER_MAX_BACKOFF);
                        continue;
                    }
                };
                backoff = Duration::from_millis(250);
                let Some(h) = hub.upgrade() else { return };
                h.ready.store(true, Ordering::Release);
                h.ready_notify.notify_waiters();
                // What was written while nobody listened.
                h.catch_up().await;
                drop(h);
                loop {
                    let heard = listener.recv().await;
                    let Some(h) = hub.upgrade() else { return };
                    match heard {
                        Ok(Heard::Event(notice)) => h.deliver(notice).await,
                        Ok(Heard::Reconnected) => {
                            tracing::warn!("tickets: the live-update listener reconnected");
                            h.catch_up().await;
                        }
                        Ok(Heard::Other) => {}
                        Err(e) => {
                            tracing::warn!("tickets: the live-update listener failed: {e}");
                            h.ready.store(false, Ordering::Release);
                            break;
                        }
                    }
                }
            }
        });
    }

    /// Sends one announced event to its ticket's viewers in this process.
    async fn deliver(&self, notice: TicketNotice) {
        let wanted = self
            .lock()
            .get(&notice.ticket)
            .is_some_and(|c| notice.event_id > c.last);
        if !wanted {
            return;
        }
        match self
            .store
            .ticket_event(notice.ticket, notice.event_id)
            .await
        {
            Ok(record) => self.send(notice.ticket, &[record]),
            Err(e) => tracing::warn!(
                "tickets: event {} of ticket {} could not be read: {e}",
                notice.event_id,
                notice.ticket
            ),
        }
    }

    /// Sends every watched ticket's events the channel has not carried yet.
    async fn catch_up(&self) {
        let watched: Vec<(TicketId, i64)> = self.lock().iter().map(|(t, c)| (*t, c.last)).collect();
        for (ticket, last) in watched {
            match self.store.ticket_events(ticket, last, true).await {
                Ok(records) => self.send(ticket, &records),
                Err(e) => tracing::warn!("tickets: catching up ticket {ticket} failed: {e}"),
            }
        }
    }

    fn send(&self, ticket: TicketId, records: &[TicketEventRecord]) {
        let mut channels = self.lock();
        let Some(channel) = channels.get_mut(&ticket) else {
            return;
        };
        for record in records {
            if record.id <= channel.last {
                continue;
            }
            channel.last = record.id;
            // No viewer left is not an error: the channel goes with the last one.
            let _ = channel.sender.send(Arc::new(LiveEvent::of(record)));
        }
    }
}

/// Who watches a stream, and what lets them keep watching.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    /// The session (re-checked every keep-alive interval).
    pub session: uuid::Uuid,
    /// A member of this tenant; `None`: the platform's staff.
    pub tenant: Option<TenantId>,
}

impl Viewer {
    fn staff(&self) -> bool {
        self.tenant.is_none()
    }
}

/// Where a stream starts: after the `Last-Event-ID` the browser sends when
/// it reconnects, else after the `?after=` the page asked for, else from
/// the first event.
pub fn start_after(headers: &HeaderMap, after: Option<&str>) -> i64 {
    let header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    header
        .or_else(|| after.and_then(|a| a.trim().parse::<i64>().ok()))
        .unwrap_or(0)
        .max(0)
}

/// What a stream does next.
enum Next {
    Send(Arc<LiveEvent>),
    Skip,
    Replay,
    End,
}

/// The event stream of one viewer of one ticket.
pub fn stream(
    state: crate::AppState,
    mut subscription: Subscription,
    viewer: Viewer,
    after: i64,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let every = state.tickets().keep_alive();
    let events = async_stream::stream! {
        let ticket = subscription.ticket;
        let store = state.store().clone();
        let mut last = after;
        let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Subscribed already: replay what the viewer has not seen, then the live ones.
        let mut replay = true;
        loop {
            if replay {
                replay = false;
                match store.ticket_events(ticket, last, viewer.staff()).await {
                    Ok(records) => {
                        for record in &records {
                            last = last.max(record.id);
                            yield Ok(LiveEvent::of(record).sse());
                        }
                    }
                    Err(e) => {
                        tracing::warn!("tickets: replaying ticket {ticket} failed: {e}");
                        break;
                    }
                }
            }
            let next = tokio::select! {
                received = subscription.recv() => match received {
                    Ok(event) if event.id <= last => Next::Skip,
                    Ok(event) => {
                        last = event.id;
                        if event.internal && !viewer.staff() { Next::Skip } else { Next::Send(event) }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => Next::Replay,
                    Err(broadcast::error::RecvError::Closed) => Next::End,
                },
                _ = recheck.tick() => {
                    match store.ticket_viewer_allowed(viewer.session, viewer.tenant, state.now()).await {
                        Ok(true) => Next::Skip,
                        Ok(false) => Next::End,
                        Err(e) => {
                            tracing::warn!("tickets: re-checking a viewer of ticket {ticket} failed: {e}");
                            Next::End
                        }
                    }
                }
            };
            match next {
                Next::Send(event) => yield Ok(event.sse()),
                Next::Skip => {}
                Next::Replay => replay = true,
                Next::End => break,
            }
        }
    };
    Sse::new(events).keep_alive(KeepAlive::new().interval(every).text("keep-alive"))
}
