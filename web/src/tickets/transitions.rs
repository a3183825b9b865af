//! Who may move a ticket from which status to which: one table
//! (`TRANSITIONS`), like `roles::ROLE_PERMISSIONS`. A tenant's VIEWER only
//! reads; MEMBER and up open tickets, reply, close them and reopen a
//! resolved one; the platform's staff make every move. A member's reply to
//! a ticket that waits on the customer, or was resolved, moves it back to
//! OPEN: it is the desk's turn again, and OPEN is the desk's queue (staff
//! move it on to IN_PROGRESS when they pick it up). No I/O.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::roles::Role;

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Open,
    InProgress,
    WaitingOnCustomer,
    Resolved,
    Closed,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Open,
        Status::InProgress,
        Status::WaitingOnCustomer,
        Status::Resolved,
        Status::Closed,
    ];

    /// The name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "OPEN",
            Status::InProgress => "IN_PROGRESS",
            Status::WaitingOnCustomer => "WAITING_ON_CUSTOMER",
            Status::Resolved => "RESOLVED",
            Status::Closed => "CLOSED",
        }
    }

    /// The name people read.
    pub fn label(self) -> &'static str {
        match self {
            Status::Open => "Open",
            Status::InProgress => "In progress",
            Status::WaitingOnCustomer => "Waiting on customer",
            Status::Resolved => "Resolved",
            Status::Closed => "Closed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        Status::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownStatus(zentralink_model::secrets::shorten(s, 40).to_string()))
    }
}

/// A status name that is none of [`Status::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a ticket status; use one of OPEN, IN_PROGRESS, WAITING_ON_CUSTOMER, RESOLVED, CLOSED"
)]
pub struct UnknownStatus(pub String);

/// Who moves the ticket, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Mover {
    /// A member of the ticket's tenant (MEMBER and up) with the status form.
    Member,
    /// A member's reply: the move happens by itself.
    MemberReply,
    /// The platform's staff.
    Staff,
}

use Status::{Closed, InProgress, Open, Resolved, WaitingOnCustomer};

/// The one table of status moves: (who, from, to).
pub const TRANSITIONS: &[(Mover, Status, Status)] = &[
    // A member closes a ticket of the tenant, whatever its state, and
    // reopens one the desk resolved.
    (Mover::Member, Open, Closed),
    (Mover::Member, InProgress, Closed),
    (Mover::Member, WaitingOnCustomer, Closed),
    (Mover::Member, Resolved, Closed),
    (Mover::Member, Resolved, Open),
    // A member's reply puts the ticket back in the desk's queue.
    (Mover::MemberReply, WaitingOnCustomer, Open),
    (Mover::MemberReply, Resolved, Open),
    // The staff make every move.
    (Mover::Staff, Open, InProgress),
    (Mover::Staff, Open, WaitingOnCustomer),
    (Mover::Staff, Open, Resolved),
    (Mover::Staff, Open, Closed),
    (Mover::Staff, InProgress, Open),
    (Mover::Staff, InProgress, WaitingOnCustomer),
    (Mover::Staff, InProgress, Resolved),
    (Mover::Staff, InProgress, Closed),
    (Mover::Staff, WaitingOnCustomer, Open),
    (Mover::Staff, WaitingOnCustomer, InProgress),
    (Mover::Staff, WaitingOnCustomer, Resolved),
    (Mover::Staff, WaitingOnCustomer, Closed),
    (Mover::Staff, Resolved, Open),
    (Mover::Staff, Resolved, InProgress),
    (Mover::Staff, Resolved, WaitingOnCustomer),
    (Mover::Staff, Resolved, Closed),
    (Mover::Staff, Closed, Open),
];

/// The roles of a tenant that write to its tickets (open, reply, move);
/// the others (VIEWER) read them.
pub const TICKET_WRITERS: &[Role] = &[Role::Owner, Role::Admin, Role::Manager, Role::Member];

/// Whether a member with `role` may open tickets, reply and move them.
pub fn member_writes(role: Role) -> bool {
    TICKET_WRITERS.contains(&role)
}

/// Whether `mover` may move a ticket from `from` to `to`, by [`TRANSITIONS`].
pub fn may_move(mover: Mover, from: Status, to: Status) -> bool {
    TRANSITIONS
        .iter()
        .any(|&(m, f, t)| m == mover && f == from && t == to)
}

/// Where `mover` may move a ticket in `from`, in the order of [`Status::ALL`].
pub fn moves_from(mover: Mover, from: Status) -> Vec<Status> {
    Status::ALL
        .into_iter()
        .filter(|&to| may_move(mover, from, to))
        .collect()
}

/// Where a member's reply moves a ticket in `from`, if anywhere.
pub fn after_member_reply(from: Status) -> Option<Status> {
    moves_from(Mover::MemberReply, from).first().copied()
}

/// Whether a member may reply to a ticket in `status` (not once it is
/// closed: open a new one). Staff may always write.
pub fn member_may_reply(status: Status) -> bool {
    status != Closed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_from_the_stored_names_only() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().ok(), Some(s));
        }
        assert!("open".parse::<Status>().is_err());
        assert!("REOPENED".parse::<Status>().is_err());
    }

    #[test]
    fn a_viewer_only_reads_and_every_other_role_writes() {
        for role in Role::ALL {
            assert_eq!(member_writes(role), role != Role::Viewer, "{role}");
        }
    }

    #[test]
    fn members_close_any_ticket_and_reopen_only_a_resolved_one() {
        for from in [Open, InProgress, WaitingOnCustomer, Resolved] {
            assert!(may_move(Mover::Member, from, Closed), "{from} -> CLOSED");
        }
        assert!(!may_move(Mover::Member, Closed, Open));
        assert!(may_move(Mover::Member, Resolved, Open));
        assert_eq!(moves_from(Mover::Member, Open), [Closed]);
        assert_eq!(moves_from(Mover::Member, Closed), []);
    }

    #[test]
    fn only_staff_set_the_desk_s_states() {
        for to in [InProgress, WaitingOnCustomer, Resolved] {
            for from in Status::ALL {
                assert!(!may_move(Mover::Member, from, to), "{from} -> {to}");
                assert!(!may_move(Mover::MemberReply, from, to), "{from} -> {to}");
            }
        }
        assert!(may_move(Mover::Staff, Open, InProgress));
        assert!(may_move(Mover::Staff, InProgress, WaitingOnCustomer));
        assert!(may_move(Mover::Staff, WaitingOnCustomer, Resolved));
        assert!(may_move(Mover::Staff, Resolved, Closed));
    }

    #[test]
    fn staff_reach_every_other_status_except_from_closed_only_reopen() {
        for from in [Open, InProgress, WaitingOnCustomer, Resolved] {
            let expected: Vec<Status> = Status::ALL.into_iter().filter(|&s| s != from).collect();
            assert_eq!(moves_from(Mover::Staff, from), expected, "from {from}");
        }
        assert_eq!(moves_from(Mover::Staff, Closed), [Open]);
    }

    #[test]
    fn nobody_moves_a_ticket_to_where_it_is() {
        for &(_, from, to) in TRANSITIONS {
            assert_ne!(from, to);
        }
    }

    #[test]
    fn a_member_s_reply_puts_a_waiting_or_resolved_ticket_back_in_the_queue() {
        assert_eq!(after_member_reply(WaitingOnCustomer), Some(Open));
        assert_eq!(after_member_reply(Resolved), Some(Open));
        assert_eq!(after_member_reply(Open), None);
        assert_eq!(after_member_reply(InProgress), None);
        assert!(!member_may_reply(Closed));
        assert!(member_may_reply(Resolved));
    }
}
