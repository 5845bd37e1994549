// The signature editor's "Insert field" menu: lists the company signature's merge
// fields by their names for people (options.fields: [[code, label], ...], translated
// by the server) and inserts `$Users||code$` at the cursor.
import { Extension } from "django-prose-editor/editor";

const token = (code) => `$Users||${code}$`;

function fieldPicker(editor, fields, title) {
  const picker = document.createElement("div");
  picker.className = "prose-menubar__picker posta-merge-fields";
  picker.popover = "auto";
  picker.setAttribute("role", "menu");
  picker.setAttribute("aria-label", title);
  for (const [code, label] of fields) {
    const option = document.createElement("button");
    option.type = "button";
    option.className = "prose-menubar__option";
    option.setAttribute("role", "menuitem");
    option.dataset.field = code;
    option.textContent = label;
    option.addEventListener("click", (event) => {
      event.preventDefault();
      picker.hidePopover();
      editor.chain().focus().insertContent(token(code)).run();
    });
    picker.append(option);
  }
  return picker;
}

export const MergeFields = Extension.create({
  name: "mergeFields",
  addOptions() {
    return { fields: [], title: "Insert field" };
  },
  addMenuItems({ menu, buttons }) {
    const { fields, title } = this.options;
    if (!fields.length) return;
    const editor = this.editor;
    const button = buttons.material("data_object", title);
    let picker = null;
    menu.defineItem({
      name: "mergeFields",
      groups: "utility",
      button,
      command() {
        if (!picker) {
          picker = fieldPicker(editor, fields, title);
          button.after(picker);
        }
        const rect = button.getBoundingClientRect();
        picker.style.left = `${window.scrollX + rect.left}px`;
        picker.style.top = `${window.scrollY + rect.bottom}px`;
        picker.togglePopover();
      },
    });
  },
});
