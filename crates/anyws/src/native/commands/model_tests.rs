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

/// A message passes the queue (is handed to the stream by its sender, `may_pass` asked under
/// the stream's lock) while the writer takes and hands over the one sent before it: it never
/// goes first.
#[test]
fn model_a_message_passes_the_queue_only_behind_what_was_sent_before() {
    check(|| {
        let (tx, mut rx) = channel();
        // What reached the stream, in order; its lock is the stream's.
        let stream = Arc::new(Mutex::new(Vec::<String>::new()));
        let on_stream = stream.clone();
        let sender = thread::spawn(move || {
            tx.send(text("a")).unwrap();
            let mut stream = lock(&on_stream);
            if tx.may_pass() {
                stream.push("b".into());
            } else {
                drop(stream);
                tx.send(text("b")).unwrap();
            }
            tx
        });
        // The writer: hands over what it took under the stream's lock, then looks for more,
        // until it finds none.
        let hand_over = |rx: &mut Receiver, batch: &mut VecDeque<Command>| loop {
            lock(&stream).extend(batch.drain(..).map(name));
            rx.try_recv_all(batch);
            if batch.is_empty() {
                break;
            }
        };
        let mut batch = VecDeque::new();
        assert!(block_on(rx.recv_all(&mut batch)));
        hand_over(&mut rx, &mut batch);
        let tx = sender.join().unwrap();
        // What was queued after the writer looked.
        hand_over(&mut rx, &mut batch);
        assert_eq!(*lock(&stream), ["a", "b"]);
        // Everything is on the stream: the next message may pass.
        assert!(tx.may_pass());
    });
}
