// Client side of the answer area. Gradio runs this once with `element`, the element that holds the
// conversation: copy buttons, citations that move within the page, questions kept while one is
// being searched, and landing the view on the top of the newest question, never an answer's end.
const copyText = async (text) => {
  try { await navigator.clipboard.writeText(text); return true; } catch (e) {
    const area = document.createElement('textarea');
    area.value = text; area.setAttribute('readonly', ''); area.style.position = 'fixed'; area.style.opacity = '0';
    document.body.appendChild(area); area.select();
    const ok = document.execCommand('copy'); area.remove(); return ok;
  }
};
element.addEventListener('click', async (ev) => {
  const button = ev.target.closest('button.qa-copy, button.qa-share');
  if (!button) return;
  const text = button.classList.contains('qa-copy')
    ? button.dataset.copy : location.origin + location.pathname + button.dataset.share;
  const ok = await copyText(text);
  const status = button.parentElement.querySelector('.qa-done');
  if (status) status.textContent = ok ? (button.classList.contains('qa-copy') ? 'Answer copied.' : 'Link copied.')
                                     : 'Could not copy: select the text instead.';
});

// --- citations: [n] moves to study n of that turn ----------------------------------------------
// Gradio's <base href="./"> makes "#t1-s1" a link to "/#t1-s1": a new page load, which lost the
// whole conversation. So in-page links move the view and the focus themselves, and add a history
// entry that keeps the question in the address; Back returns to the citation.
const focusOn = (el) => {
  if (el.matches('.qa-folded')) setFolded(el, false);  // a citation opens the card it names
  el.scrollIntoView({block: 'start'});
  const target = el.matches('.qa-study') ? el.querySelector('.qa-cite') || el : el;
  target.focus({preventScroll: true});
};
element.addEventListener('click', (ev) => {
  const link = ev.target.closest('a[href^="#"]');
  if (!link) return;
  const target = document.getElementById(link.getAttribute('href').slice(1));
  ev.preventDefault();  // never the page load, even when the target has gone
  if (!target) return;
  if (link.id) history.replaceState({...(history.state || {}), qaAt: link.id}, '');
  history.pushState({qaAt: target.id}, '', location.pathname + location.search + '#' + target.id);
  focusOn(target);
});
window.addEventListener('popstate', (ev) => {
  const id = ev.state && ev.state.qaAt;
  const el = id && document.getElementById(id);
  if (el) focusOn(el);
});

// --- one question at a time, none lost ---------------------------------------------------------
// A question asked while another is being searched stays in the box with a note and is asked as
// soon as the answer shows (sending both at once let the second overwrite the first's turn).
const box = () => document.querySelector('#qa-question textarea');
const askButton = () => document.querySelector('#qa-ask');
let waiting = 0;  // time the last question was sent, until its answer shows (0: none)
let held = '';  // the question kept in the box while another is searched
// What the reader types while a question is searched, before pressing Enter: the server's echo
// of that question empties the box and took this with it (a second question was lost so).
let draft = '';
// The question sent last: only its answer ends the wait. Gradio can redraw an older turn first
// (a stale chat after "New conversation"), and ending the wait on it sent the next question at
// once, which then overwrote the first one's turn.
let sent = '';
// Letters and digits only: the server's heading may differ in spacing, line breaks and marks.
const norm = (t) => (t || '').replace(/[^\p{L}\p{N}]+/gu, '');
const answers = (turn) => {
  const heading = turn.querySelector('.qa-question');
  if (!sent || !heading) return true;
  const you = heading.querySelector('.qa-you');
  const asked = norm(heading.textContent).slice(norm(you ? you.textContent : '').length);
  return asked.slice(0, 200) === sent.slice(0, 200);
};
// The server's echo of the first question empties the box, which may by then hold the next one:
// put it back (through the setter and an input event, so Gradio's own copy follows).
const setBox = (text) => {
  const area = box();
  if (!area || area.value === text) return;
  Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set.call(area, text);
  area.dispatchEvent(new Event('input', {bubbles: true}));
};
const WAIT_LIMIT_MS = 60000;  // a lost reply must not hold the box for ever
const RELEASE_MS = 1500;  // a kept question is asked this long after the answer before it shows
const busy = () => waiting && Date.now() - waiting < WAIT_LIMIT_MS;
const heldNote = () => {
  let note = document.getElementById('qa-held');
  if (!note) {
    note = document.createElement('p');
    note.id = 'qa-held'; note.className = 'qa-held'; note.setAttribute('role', 'status');
    const row = document.querySelector('#qa-question');
    (row && row.closest('.row') || row || element).after(note);
  }
  return note;
};
const echo = (text) => {
  // Show the question with "Searching…" at once, before the server's own echo replaces it.
  const chat = element.querySelector('.qa-chat') || element;
  const n = chat.querySelectorAll('.qa-turn:not(.qa-provisional)').length + 1;
  const turn = document.createElement('section');
  turn.className = 'qa-turn qa-pending qa-provisional'; turn.id = 't' + n;
  const heading = document.createElement('h2');
  heading.className = 'qa-question'; heading.tabIndex = -1;
  const you = document.createElement('span');
  you.className = 'qa-you'; you.textContent = 'You asked:';
  heading.append(you, ' ', text);
  const wait = document.createElement('p');
  wait.className = 'qa-wait'; wait.setAttribute('role', 'status'); wait.textContent = 'Searching…';
  turn.append(heading, wait);
  chat.append(turn);
};
const sending = (ev) => {
  const area = box();
  const text = area ? area.value.trim() : '';
  if (!text && !(busy() && draft.trim())) return;
  if (busy()) {
    ev.preventDefault(); ev.stopImmediatePropagation();
    held = text ? area.value : draft;  // the box emptied under the reader's Enter: what they typed
    draft = '';
    setBox(held);
    heldNote().textContent = 'Your next question is kept in the box: it will be asked when this answer is shown.';
    return;
  }
  waiting = Date.now(); draft = ''; sent = norm(text);
  if (!element.querySelector('.qa-pending')) echo(text);
};
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.target === box()) sending(ev);
}, true);
document.addEventListener('input', (ev) => {
  if (!ev.isTrusted || ev.target !== box()) return;
  if (held) held = box().value;  // still typing it
  else if (busy()) draft = box().value;
}, true);
document.addEventListener('click', (ev) => {
  if (ev.isTrusted && askButton() && askButton().contains(ev.target)) sending(ev);
}, true);
const release = () => {
  waiting = 0; draft = '';
  if (!held) return;
  const text = held.trim();
  held = '';
  heldNote().textContent = '';
  // After Gradio has finished the last event, or it would ignore the click; and not at once: a
  // question sent 0.4 s after the answer showed was once numbered and stored as if that answer
  // had never been given (the conversation it read did not hold it yet), and that answer was lost.
  setTimeout(() => {
    if (!text || !box()) return;
    if (!box().value.trim()) setBox(text);
    waiting = Date.now(); sent = norm(text); echo(text); askButton().click();
    // Gradio ignores a click while its last event is still finishing: try once more if the box
    // was not emptied (the server's echo empties it).
    setTimeout(() => { if (box() && box().value.trim() === text) askButton().click(); }, 3000);
  }, RELEASE_MS);
};

// --- on a phone, cards after the first fold to their headings ---------------------------------
const PHONE = window.matchMedia('(max-width: 640px)');
const setFolded = (card, folded) => {
  card.classList.toggle('qa-folded', folded);
  const button = card.querySelector('.qa-unfold');
  if (button) {
    button.setAttribute('aria-expanded', String(!folded));
    button.textContent = folded ? 'Show this study' : 'Fold this study';
  }
};
const fold = () => {
  if (!PHONE.matches) return;
  element.querySelectorAll('.qa-turn:not(.qa-pending)').forEach((turn) => {
    turn.querySelectorAll('.qa-study').forEach((card, n) => {
      if (n === 0 || card.querySelector('.qa-unfold')) return;
      const button = document.createElement('button');
      button.type = 'button'; button.className = 'qa-unfold';
      const heading = card.querySelector('.qa-cite');
      if (heading) button.setAttribute('aria-describedby', heading.id);
      (heading || card.firstChild).after(button);
      setFolded(card, true);
    });
  });
};
element.addEventListener('click', (ev) => {
  const button = ev.target.closest('button.qa-unfold');
  if (button) setFolded(button.closest('.qa-study'), !button.closest('.qa-study').classList.contains('qa-folded'));
});

// --- land on the newest question ---------------------------------------------------------------
let seen = '';
let first = true;
// The page's own echo goes once the server's turn of that number is there: Gradio may keep a
// node it did not render, and a stale "Searching…" would also hold the next question for ever.
const dropProvisional = () => {
  const served = new Set([...element.querySelectorAll('.qa-turn:not(.qa-provisional)')].map((t) => t.id));
  element.querySelectorAll('.qa-provisional').forEach((t) => { if (served.has(t.id)) t.remove(); });
};
const keepTyped = () => {
  const keep = held || draft;
  if (keep && box() && !box().value.trim()) setBox(keep);
};
const land = () => {
  dropProvisional();
  fold();
  keepTyped();
  setTimeout(keepTyped, 100);  // the box may be emptied just after the chat is redrawn
  const turns = element.querySelectorAll('.qa-turn');
  const last = turns[turns.length - 1];
  // An empty chat does not end a wait: Gradio can redraw it (dropping the page's own echo) while
  // the question is still on its way; only its answer, or WAIT_LIMIT_MS, does.
  if (!last) { seen = ''; return; }
  const pending = last.classList.contains('qa-pending');
  const ours = answers(last);
  const key = last.id + (pending ? '-pending' : '') + (ours ? '' : '-other');
  if (key === seen) return;
  seen = key;
  if (!pending && ours) release();
  // Reloaded at "/?q=…#t1-s2": the cited study, once the answer is back.
  const cited = first && !pending && location.hash && document.getElementById(location.hash.slice(1));
  if (!pending) first = false;
  if (cited) { focusOn(cited); return; }
  last.scrollIntoView({block: 'start'});
  const heading = last.querySelector('.qa-question');
  if (heading && !pending) heading.focus({preventScroll: true});
  if (last.dataset.share) history.replaceState(null, '', location.pathname + last.dataset.share);
};
new MutationObserver(land).observe(element, {childList: true, subtree: true});
land();
