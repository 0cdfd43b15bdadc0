// Case page: the process diagram in the bpmn-js NavigatedViewer (served from node_modules),
// with completed steps and the current position marked.
(function () {
  "use strict";
  var el = document.getElementById("diagram");
  if (!el) { return; }

  function fail() {
    el.dataset.ready = "error";
    el.textContent = el.dataset.error || "";
  }
  if (typeof window.BpmnJS !== "function") { fail(); return; }

  fetch(el.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    })
    .then(function (data) {
      var viewer = new window.BpmnJS({ container: el });
      return viewer.importXML(data.xml).then(function () {
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        data.done.forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, "tsu-done"); } });
        data.current.forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, "tsu-current"); } });
        canvas.zoom("fit-viewport", "auto");
        el.dataset.ready = "true";
      });
    })
    .catch(fail);
})();
