//! Model checks of the command queue with loom (see `core/model_tests.rs` for how they run):
//! a handle sends while the connection task waits in `recv_all`.

use super::*;
use crate::core::model_tests::check;
use crate::Message;
use loom::future::block_on;
use loom::thread;

fn text(s: &str) -> Command {
    Command::Send(Message::Text(s.into()))
}

fn name(c: Command) -> String {
    match c {
        Command::Send(Message::Text(t)) => t.into(),
        other => format!("{other:?}"),
    }
}

/// Two commands sent while the receiver waits (the sender stays): it is woken for each
/// batch and gets them in order.
#[test]
fn model_command_queue_wakes_in_order() {
    check(|| {
        let (tx, mut rx) = channel();
        let sender = thread::spawn(move || {
            tx.send(text("a")).unwrap();
            tx.send(text("b")).unwrap();
            tx
        });
        let mut got = Vec::new();
        let mut batch = VecDeque::new();
        while got.len() < 2 {
            assert!(block_on(rx.recv_all(&mut batch)));
            assert!(!batch.is_empty(), "woken with nothing");
            got.extend(batch.drain(..).map(name));
        }
        assert_eq!(got, ["a", "b"]);
        drop(sender.join().unwrap());
        assert!(!block_on(rx.recv_all(&mut batch)));
    });
}

/// A command sent and the sender dropped while the receiver waits: the command comes out,
/// then the end.
#[test]
fn model_command_queue_sender_gone() {
    check(|| {
        let (tx, mut rx) = channel();
        let sender = thread::spawn(move || {
            tx.send(text("a")).unwrap();
        });
        let mut got = Vec::new();
        let mut batch = VecDeque::new();
        while block_on(rx.recv_all(&mut batch)) {
            got.extend(batch.drain(..).map(name));
        }
        sender.join().unwrap();
        assert_eq!(got, ["a"]);
    });
}

/// The receiver gone while a command is sent: the send either lands before (and is dropped
/// with the queue) or gives the command back; nothing is left queued.
#[test]
fn model_command_queue_receiver_gone() {
    check(|| {
        let (tx, rx) = channel();
        let sender = thread::spawn(move || {
            let sent = tx.send(text("a"));
            (tx, sent)
        });
        drop(rx);
        let (tx, sent) = sender.join().unwrap();
        let state = lock(&tx.shared.state);
        assert!(state.receiver_gone && state.queue.is_empty());
        drop(state);
        // Nothing is counted as waiting either (a `Sink` counts them).
        assert_eq!(tx.queued(), 0);
        if let Err(back) = sent {
            assert_eq!(name(back), "a");
        }
    });
}
