// Image upload with a progress bar: create the image record, then PUT the file as the raw body
// (XMLHttpRequest, because fetch() reports no upload progress). The server streams it to disk.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const fileInput = form.querySelector('input[type="file"]');
  const bar = document.getElementById("upload-progress");
  const label = document.getElementById("upload-status");
  const button = form.querySelector('button[type="submit"]');
  window.kumoUploadProgress = [];

  function say(text, kind) {
    label.textContent = text;
    label.className = kind === "error" ? "alert" : "";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) { say("Choose a file to upload.", "error"); fileInput.focus(); return; }
    const token = form.querySelector('input[name="csrfmiddlewaretoken"]').value;
    const fields = new FormData(form);
    fields.delete("file");
    button.disabled = true;
    say("Creating the image…");
    const created = await fetch(form.action, {
      method: "POST", body: fields, headers: { Accept: "application/json", "X-CSRFToken": token },
      credentials: "same-origin",
    });
    const answer = await created.json().catch(() => ({ error: "The server refused (" + created.status + ")." }));
    if (!created.ok) { say(answer.error, "error"); button.disabled = false; return; }

    const xhr = new XMLHttpRequest();
    xhr.open("PUT", answer.upload_url);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("X-CSRFToken", token);
    bar.hidden = false;
    bar.max = file.size || 1;
    bar.value = 0;
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      bar.max = e.total;
      bar.value = e.loaded;
      const pct = Math.floor((100 * e.loaded) / e.total);
      window.kumoUploadProgress.push(pct);
      say("Uploading " + file.name + ": " + pct + "%");
    });
    xhr.addEventListener("load", () => {
      button.disabled = false;
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* an HTML error page */ }
      if (xhr.status >= 200 && xhr.status < 300) {
        bar.value = bar.max;
        say("Uploaded " + file.name + ": the image is " + body.status + ".");
        form.dataset.uploaded = answer.id;
        setTimeout(() => { location.href = "/images/" + answer.id + "/"; }, 800);
      } else {
        say(body.error || "The upload was refused (" + xhr.status + ").", "error");
      }
    });
    xhr.addEventListener("error", () => { button.disabled = false; say("The upload failed: the connection was lost.", "error"); });
    say("Uploading " + file.name + ": 0%");
    xhr.send(file);
  });
})();
