// Response templates: picking one fills the note it belongs to (staff may edit it after).
document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select.template-select")) {
    select.addEventListener("change", () => {
      const option = select.selectedOptions[0];
      const target = document.getElementById(select.dataset.target);
      if (target && option && option.dataset.text) {
        target.value = option.dataset.text;
        target.focus();
      }
    });
  }
});
