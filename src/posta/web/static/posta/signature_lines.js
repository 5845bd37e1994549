// Signatures are lines, not paragraphs: Enter makes a line break (<br>) as a
// signature is typed in a mail client, so the sent signature is not double-spaced by
// the receiving client's paragraph margins. In a list, Enter still starts an item.
import { Extension } from "django-prose-editor/editor";

export const SignatureLines = Extension.create({
  name: "signatureLines",
  addKeyboardShortcuts() {
    return {
      Enter: () => {
        if (this.editor.isActive("listItem")) return false;
        return this.editor.commands.setHardBreak();
      },
    };
  },
});
