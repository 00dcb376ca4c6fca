// The teacher's hand on a student's page (nnref/lab/classroom.py): one line that says what the teacher did, Play and
// Step held while the class is paused, a locked set-up's points and network out of reach, the groups the teacher
// hid hidden — and the student's display name, typed once, remembered on this machine and told to the server.

// What a locked set-up holds out of reach (inert: seen, not used): the points and the network's shape (the recipe
// and the weights typed by hand stay the student's).  The server refuses such a change all the same.
const HELD = ['[data-group="data"]', '[data-group="model"]', '[data-group="activation"]', "#layer-controls",
              "#regenerate"].join(", ");
const NAME_KEY = "nnref-lab-name";

export class Teacher {
  constructor(line) {
    this.line = line;
    this.rules = null;  // none until the teacher has said something to this page
  }

  /** A teacher's message: the rules now, the line shown.  Returns the set-up to open (an address fragment: a
   *  sent preset, or the one the class is locked on) or null. */
  receive(message) {
    this.rules = {paused: message.paused, hide: message.hide, lock: message.lock};
    if (message.line) {
      this.line.textContent = message.line;
      this.line.hidden = false;
    }
    return message.setup ?? null;
  }

  /** The groups the teacher hides (null: the teacher has said nothing, the page's own stand). */
  hidden() {
    return this.rules ? this.rules.hide : null;
  }

  /** Hold the controls to the rules: run each time the page has shown its state. */
  apply(root = document) {
    if (!this.rules) return;
    const lock = this.rules.lock;
    root.querySelectorAll(HELD).forEach(e => {
      e.inert = Boolean(lock);
      e.classList.toggle("held", Boolean(lock));
    });
    for (const id of ["play", "step"]) {
      const button = root.getElementById(id);
      if (button) {
        button.disabled = this.rules.paused;
        button.title = this.rules.paused ? "Your teacher paused the class" : button.title;
      }
    }
  }
}

/** The display name field: what was typed on this machine before, told to the server when the page connects (call
 *  the returned function then) and again when it changes. */
export function displayName(input, send) {
  input.value = localStorage.getItem(NAME_KEY) ?? "";
  const tell = () => { if (input.value.trim()) send({type: "name", name: input.value.trim().slice(0, 40)}); };
  input.addEventListener("change", () => {
    localStorage.setItem(NAME_KEY, input.value.trim());
    tell();
  });
  return tell;
}
