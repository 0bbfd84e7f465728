//! The demo page: `anyws-chat` (the same client module the native CLI runs) rendering into
//! `index.html`. It shows the socket's `readyState`, `bufferedAmount`, protocol and extensions
//! live, the close code and reason when a connection ends, problems as a visible alert, the
//! room, and a reconnect button.
#![cfg(target_arch = "wasm32")]

use anyws::{ReadyState, ReconnectingWebSocket};
use anyws_chat::{Config, Update};
use futures::StreamExt;
use gloo_events::EventListener;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Document, Element, HtmlInputElement};

/// Starts the page.
#[wasm_bindgen(start)]
pub fn start() -> Result<(), JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let document = window.document().ok_or("no document")?;
    let page = Page::new(document)?;
    let params = web_sys::UrlSearchParams::new_with_str(&window.location().search()?)?;
    let name = params
        .get("name")
        .unwrap_or_else(|| format!("browser-{}", (js_sys::Math::random() * 1000.0) as u32));
    // A relative URL: the browser resolves it against the page (http -> ws).
    let url = params.get("ws").unwrap_or_else(|| "/chat".to_owned());
    page.set_text("name", &name);

    let (chat, mut updates, run) = anyws_chat::start(Config::new(url, name, "browser"));
    wasm_bindgen_futures::spawn_local(run);

    let socket: Rc<RefCell<Option<ReconnectingWebSocket>>> = Rc::default();
    page.on_submit(chat.clone())?;
    let reconnect = chat.clone();
    let button = page.get("reconnect")?;
    EventListener::new(&button, "click", move |_| reconnect.reconnect()).forget();

    // The socket's own getters, shown live (bufferedAmount moves without events).
    let (live, live_page) = (socket.clone(), page.clone());
    gloo_timers::callback::Interval::new(100, move || {
        if let Some(ws) = live.borrow().as_ref() {
            live_page.show_socket(ws);
        }
    })
    .forget();

    wasm_bindgen_futures::spawn_local(async move {
        while let Some(update) = updates.next().await {
            page.render(update, &socket);
        }
    });
    Ok(())
}

#[derive(Clone)]
struct Page {
    document: Document,
}

impl Page {
    fn new(document: Document) -> Result<Page, JsValue> {
        let page = Page { document };
        page.get("log")?; // the markup is there
        Ok(page)
    }

    fn get(&self, id: &str) -> Result<Element, JsValue> {
        self.document
            .get_element_by_id(id)
            .ok_or_else(|| JsValue::from_str(&format!("#{id} is missing from index.html")))
    }

    fn set_text(&self, id: &str, text: &str) {
        if let Ok(e) = self.get(id) {
            e.set_text_content(Some(text));
        }
    }

    fn on_submit(&self, chat: anyws_chat::Chat) -> Result<(), JsValue> {
        let input: HtmlInputElement = self.get("say")?.dyn_into()?;
        let form = self.get("say-form")?;
        EventListener::new_with_options(
            &form,
            "submit",
            gloo_events::EventListenerOptions::enable_prevent_default(),
            move |event| {
                event.prevent_default();
                let text = input.value();
                if !text.trim().is_empty() {
                    chat.say(text);
                    input.set_value("");
                }
            },
        )
        .forget();
        Ok(())
    }

    fn show_socket(&self, ws: &ReconnectingWebSocket) {
        let state = ws.ready_state();
        let name = match state {
            ReadyState::Connecting => "CONNECTING (0)",
            ReadyState::Open => "OPEN (1)",
            ReadyState::Closing => "CLOSING (2)",
            ReadyState::Closed => "CLOSED (3)",
        };
        self.set_text("ready-state", name);
        if let Ok(e) = self.get("ready-state") {
            e.set_class_name(&format!("state-{}", state as u16));
        }
        self.set_text("buffered", &format!("{} bytes", ws.buffered_amount()));
        let protocol = ws.protocol();
        self.set_text(
            "protocol",
            if protocol.is_empty() {
                "(none yet)"
            } else {
                &protocol
            },
        );
        // What the server accepted of the browser's offer (permessage-deflate from anyws's
        // server).
        let extensions = ws.extensions();
        self.set_text(
            "extensions",
            if extensions.is_empty() {
                "(none yet)"
            } else {
                &extensions
            },
        );
        self.set_text("url", &ws.url());
    }

    fn log(&self, class: &str, who: Option<&str>, text: &str) {
        let Ok(log) = self.get("log") else { return };
        let Ok(item) = self.document.create_element("li") else {
            return;
        };
        item.set_class_name(class);
        if let Some(who) = who {
            if let Ok(b) = self.document.create_element("b") {
                b.set_text_content(Some(who));
                let _ = item.append_child(&b);
            }
        }
        let text = if who.is_some() {
            format!(" {text}")
        } else {
            text.to_owned()
        };
        let _ = item.append_child(&self.document.create_text_node(&text));
        let _ = log.append_child(&item);
        item.scroll_into_view();
    }

    fn problem(&self, text: Option<&str>) {
        if let Ok(e) = self.get("problem") {
            e.set_text_content(text);
            let _ = match text {
                Some(_) => e.remove_attribute("hidden"),
                None => e.set_attribute("hidden", ""),
            };
        }
    }

    fn render(&self, update: Update, socket: &Rc<RefCell<Option<ReconnectingWebSocket>>>) {
        match update {
            Update::Connecting {
                socket: ws,
                attempt,
            } => {
                self.show_socket(&ws);
                *socket.borrow_mut() = Some(ws);
                let note = if attempt == 0 {
                    "connecting…".to_owned()
                } else {
                    format!("connecting (attempt {})…", attempt + 1)
                };
                self.log("note", None, &note);
            }
            Update::Open { protocol } => {
                self.problem(None);
                self.set_text("close", "—");
                self.log("note", None, &format!("open, protocol {protocol}"));
            }
            Update::Room { me, users } => {
                let Ok(list) = self.get("users") else { return };
                list.set_text_content(None);
                for u in users {
                    if let Ok(li) = self.document.create_element("li") {
                        let you = if u.id == me { " · you" } else { "" };
                        li.set_text_content(Some(&format!("{} ({}{you})", u.name, u.runtime)));
                        li.set_class_name(&u.runtime);
                        let _ = list.append_child(&li);
                    }
                }
            }
            Update::Joined(u) => {
                self.log("note", None, &format!("{} joined ({})", u.name, u.runtime))
            }
            Update::Left(u) => self.log("note", None, &format!("{} left", u.name)),
            Update::Said { from, text } => {
                self.log(&format!("said {}", from.runtime), Some(&from.name), &text)
            }
            Update::Problem(p) => self.problem(Some(&p)),
            Update::Closed {
                code,
                reason,
                was_clean,
            } => {
                let clean = if was_clean { "clean" } else { "not clean" };
                let text = format!("{code} {reason:?} ({clean})");
                self.set_text("close", &text);
                self.log("note", None, &format!("closed: {text}"));
                if let Some(ws) = socket.borrow().as_ref() {
                    self.show_socket(ws);
                }
            }
            Update::Retrying { after } => self.log(
                "note",
                None,
                &format!(
                    "reconnecting in {:.1} s (or press Reconnect)",
                    after.as_secs_f32()
                ),
            ),
            Update::Stopped => self.log("note", None, "stopped"),
        }
    }
}
