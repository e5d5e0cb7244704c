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

// --- every question sent as asked, none lost --------------------------------------------------
// The server keeps the conversation and answers questions in the order asked (a question asked
// while another is searched takes the next turn: qa/serve/conversation.py). The page shows each
// question with "Searching…" the moment it is sent. Until the server has taken it (its echo empties
// the box, within a fraction of a second), the box is read-only: Gradio reads the box's value a
// moment after Enter, and text typed in that moment went out in place of the question sent, or
// was emptied by its echo; a question sent in it could also overtake the one before.
const box = () => document.querySelector('#qa-question textarea');
const askButton = () => document.querySelector('#qa-ask');
const TAKE_LIMIT_MS = 5000;  // a lost echo must not hold the box for ever
let unlockTimer = 0;
const unlock = () => {
  clearTimeout(unlockTimer);
  if (box()) box().readOnly = false;
};
const echo = (text) => {
  // The page's own echo, numbered as the server will number it, until the server's turn is there.
  const chat = element.querySelector('.qa-chat') || element;
  const n = chat.querySelectorAll('.qa-turn').length + 1;
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
  if (!text) return;
  if (area.readOnly) {  // the question before is still on its way: this one waits for it
    ev.preventDefault(); ev.stopImmediatePropagation();
    return;
  }
  area.readOnly = true;
  unlockTimer = setTimeout(() => {  // no echo came: the page's own goes too, and the box opens
    element.querySelectorAll('.qa-provisional').forEach((t) => t.remove());
    unlock();
  }, TAKE_LIMIT_MS);
  echo(text);
};
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.target === box()) sending(ev);
}, true);
document.addEventListener('click', (ev) => {
  if (ev.isTrusted && askButton() && askButton().contains(ev.target)) sending(ev);
}, true);

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

// --- land on each answer as it comes ---------------------------------------------------------
let first = true;
let known = new Set();  // turns already landed on (number and question), answered or pending
const keyOf = (turn) => turn.id + (turn.classList.contains('qa-pending') ? '?' : '!') + turn.querySelector('.qa-question')?.textContent;
// The page's own echo goes once the server's turn of that number is there: Gradio may keep a
// node it did not render, and a stale "Searching…" would stay for ever.
const dropProvisional = () => {
  const served = new Set([...element.querySelectorAll('.qa-turn:not(.qa-provisional)')].map((t) => t.id));
  element.querySelectorAll('.qa-provisional').forEach((t) => { if (served.has(t.id)) t.remove(); });
};
const land = () => {
  dropProvisional();
  if (!element.querySelector('.qa-provisional')) unlock();  // the server has taken every question
  fold();
  const turns = [...element.querySelectorAll('.qa-turn')];
  if (!turns.length) { known = new Set(); return; }
  const fresh = turns.filter((t) => !known.has(keyOf(t)));
  turns.forEach((t) => known.add(keyOf(t)));
  // The first answer not landed on yet, else a question just asked.
  const target = fresh.find((t) => !t.classList.contains('qa-pending')) || fresh[fresh.length - 1];
  if (!target) return;
  const pending = target.classList.contains('qa-pending');
  // Reloaded at "/?q=…#t1-s2": the cited study, once the answer is back.
  const cited = first && !pending && location.hash && document.getElementById(location.hash.slice(1));
  if (!pending) first = false;
  if (cited) { focusOn(cited); return; }
  target.scrollIntoView({block: 'start'});
  const heading = target.querySelector('.qa-question');
  // Focus moves to the answer for a screen reader, but never out of a box the reader is typing in.
  const typing = document.activeElement === box() && box().value.trim();
  if (heading && !pending && !typing) heading.focus({preventScroll: true});
  if (!pending && target.dataset.share) history.replaceState(null, '', location.pathname + target.dataset.share);
};
new MutationObserver(land).observe(element, {childList: true, subtree: true});
land();
