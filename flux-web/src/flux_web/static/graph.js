// Graph view: dagre computes the layout (left to right); this file only draws it as SVG.
(function () {
  "use strict";
  var holder = document.getElementById("graph");
  var source = document.getElementById("graph-data");
  if (!holder || !source || typeof dagre === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var NODE_HEIGHT = 36, CHAR_WIDTH = 7.2, PADDING = 24;

  function el(name, attributes, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }

  function colorOf(state) {
    return data.colors[state ? state.toLowerCase() : "none"] || "#ffffff";
  }

  var g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 16, ranksep: 48, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(function () { return {}; });
  data.nodes.forEach(function (node) {
    var width = Math.max(node.id.length, (node.operator || "").length) * CHAR_WIDTH + PADDING;
    g.setNode(node.id, { width: width, height: NODE_HEIGHT, data: node });
  });
  data.edges.forEach(function (edge) { g.setEdge(edge[0], edge[1]); });
  dagre.layout(g);

  var size = g.graph();
  var svg = el("svg", { width: Math.ceil(size.width), height: Math.ceil(size.height),
                        viewBox: "0 0 " + Math.ceil(size.width) + " " + Math.ceil(size.height),
                        role: "img" });
  var defs = el("defs", {}, svg);
  var marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
                              markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
  el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#6b7280" }, marker);

  g.edges().forEach(function (e) {
    var points = g.edge(e).points;
    var d = points.map(function (p, i) { return (i ? "L" : "M") + p.x + " " + p.y; }).join(" ");
    el("path", { d: d, fill: "none", stroke: "#9ca3af", "stroke-width": 1.5,
                 "marker-end": "url(#arrow)", "class": "edge",
                 "data-from": e.v, "data-to": e.w }, svg);
  });

  g.nodes().forEach(function (id) {
    var n = g.node(id);
    var parent = svg;
    if (n.data.url) {
      parent = el("a", { href: n.data.url }, svg);
    }
    var group = el("g", { "class": "node", "data-task": id, "data-state": n.data.state || "",
                          transform: "translate(" + (n.x - n.width / 2) + "," + (n.y - n.height / 2) + ")" }, parent);
    var fill = colorOf(n.data.state);
    el("rect", { width: n.width, height: n.height, rx: 5, ry: 5, fill: "#ffffff",
                 stroke: fill, "stroke-width": 3 }, group);
    el("rect", { width: 6, height: n.height, rx: 2, ry: 2, fill: fill }, group);
    var title = el("title", {}, group);
    title.textContent = id + ": " + (n.data.state || "no state");
    var label = el("text", { x: 12, y: 15 }, group);
    label.textContent = id;
    var sub = el("text", { x: 12, y: 29, fill: "#6b7280", "font-size": 11 }, group);
    sub.textContent = n.data.operator || "";
  });
  holder.appendChild(svg);
})();
