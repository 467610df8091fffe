// The case report's 3D view: every mesh layer of the page, coloured by lumen diameter,
// with orbit controls (drag to rotate, wheel or pinch to zoom, right-drag to pan).
// Uses the bundled three.js subset (globalThis.AngioThree, vendor/three-subset.min.js).
// Data: the JSON in <script id="angio-mesh-data"> (report_html/mesh_layer.py, encode_layers).
// When the first frame is on screen, <body data-viewer="ready">; when the view cannot
// start (no WebGL), data-viewer="unavailable" and a message replaces the canvas.

const T = globalThis.AngioThree;
const data = JSON.parse(document.getElementById("angio-mesh-data").textContent);
const box = document.getElementById("viewer");

function bytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out.buffer;
}

function rgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [((n >> 16) & 255) / 255, ((n >> 8) & 255) / 255, (n & 255) / 255];
}

const ramp = data.ramp.map(([p, c]) => [p, rgb(c)]);

// Linear interpolation of the ramp at t in [0, 1] (sRGB values, as the legend shows them).
function rampAt(t) {
  t = Math.min(1, Math.max(0, t));
  for (let k = 1; k < ramp.length; k++) {
    const [p1, c1] = ramp[k];
    const [p0, c0] = ramp[k - 1];
    if (t <= p1) {
      const w = p1 > p0 ? (t - p0) / (p1 - p0) : 0;
      return [0, 1, 2].map((i) => c0[i] + w * (c1[i] - c0[i]));
    }
  }
  return ramp[ramp.length - 1][1];
}

function geometryOf(layer, range) {
  const g = new T.BufferGeometry();
  const pos = new Float32Array(bytes(layer.vertices));
  g.setAttribute("position", new T.BufferAttribute(pos, 3));
  const idx = layer.index_type === "uint16" ? new Uint16Array(bytes(layer.faces))
                                            : new Uint32Array(bytes(layer.faces));
  g.setIndex(new T.BufferAttribute(idx, 1));
  g.computeVertexNormals();
  if (layer.diameter_mm && range) {
    const d = new Float32Array(bytes(layer.diameter_mm));
    const span = range[1] - range[0];
    const col = new Float32Array(3 * d.length);
    const c = new T.Color();
    const plain = rgb(data.plain_colour);
    for (let i = 0; i < d.length; i++) {
      const ok = Number.isFinite(d[i]);
      const v = !ok ? plain : rampAt(span > 0 ? (d[i] - range[0]) / span : 0.5);
      c.setRGB(v[0], v[1], v[2], "srgb"); // converted to the renderer's linear working space
      col[3 * i] = c.r;
      col[3 * i + 1] = c.g;
      col[3 * i + 2] = c.b;
    }
    g.setAttribute("color", new T.BufferAttribute(col, 3));
  }
  return g;
}

function start() {
  const renderer = new T.WebGLRenderer({ antialias: true });
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  renderer.setClearColor(0x1f2933, 1);
  box.prepend(renderer.domElement);

  const scene = new T.Scene();
  const camera = new T.PerspectiveCamera(35, 1, 0.1, 10000);
  camera.up.set(0, 0, 1); // LPS: +z is superior
  scene.add(camera);
  scene.add(new T.AmbientLight(0xffffff, 0.9));
  const head = new T.DirectionalLight(0xffffff, 2.0); // a headlight: shading follows the view
  head.position.set(0.3, 0.4, 1);
  camera.add(head);

  const meshes = [];
  const bounds = new T.Box3();
  for (const layer of data.layers) {
    const g = geometryOf(layer, data.diameter_range_mm);
    const coloured = g.getAttribute("color") !== undefined;
    const mat = new T.MeshLambertMaterial({
      vertexColors: coloured,
      color: coloured ? 0xffffff : new T.Color(data.plain_colour),
      side: T.DoubleSide, // open tube ends: the inside stays lit instead of vanishing
    });
    const mesh = new T.Mesh(g, mat);
    mesh.name = layer.name;
    mesh.visible = layer.visible !== false;
    scene.add(mesh);
    g.computeBoundingBox();
    bounds.union(g.boundingBox);
    meshes.push(mesh);
  }

  const centre = bounds.getCenter(new T.Vector3());
  const radius = Math.max(bounds.getSize(new T.Vector3()).length() / 2, 1);
  const controls = new T.OrbitControls(camera, renderer.domElement);
  controls.target.copy(centre);

  function render() {
    renderer.render(scene, camera);
  }

  // Look at the meshes from `dir` (world, towards the eye) with `up`, all of them in view.
  function look(dir, up) {
    const fit = radius / Math.sin((camera.fov * Math.PI) / 360) * 1.05;
    const d = new T.Vector3(...dir).normalize();
    camera.up.set(...up);
    camera.position.copy(centre).addScaledVector(d, fit);
    camera.near = Math.max(fit / 100, 0.01);
    camera.far = fit * 10;
    camera.updateProjectionMatrix();
    controls.target.copy(centre);
    controls.update();
    render();
  }

  function resize() {
    const w = Math.max(box.clientWidth, 1);
    const h = Math.max(box.clientHeight, 1);
    renderer.setSize(w, h);
    camera.aspect = w / h;
    camera.updateProjectionMatrix();
    render();
  }

  controls.addEventListener("change", render);
  new ResizeObserver(resize).observe(box);

  const bar = document.getElementById("viewer-buttons");
  const button = (label, fn) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", fn);
    bar.append(b);
  };
  const anterior = () => look([0, -1, 0], [0, 0, 1]);
  button("Anterior", anterior);
  button("Left lateral", () => look([1, 0, 0], [0, 0, 1]));
  for (const v of data.views || []) button(`As view ${v.name}`, () => look(v.direction, v.up));

  const list = document.getElementById("viewer-layers");
  meshes.forEach((mesh) => {
    const label = document.createElement("label");
    const cb = document.createElement("input");
    cb.type = "checkbox";
    cb.checked = mesh.visible;
    cb.dataset.layer = mesh.name;
    cb.addEventListener("change", () => {
      mesh.visible = cb.checked;
      render();
    });
    label.append(cb, " " + mesh.name);
    list.append(label);
  });

  resize();
  anterior();
  // Two frames later the first render is on screen.
  requestAnimationFrame(() => requestAnimationFrame(() => {
    document.body.dataset.viewer = "ready";
  }));
}

try {
  start();
} catch (err) {
  box.textContent = "The 3D view could not start in this browser (" + err.message +
    "). The rest of the report does not need it.";
  box.classList.add("viewer-failed");
  document.body.dataset.viewer = "unavailable";
  console.error("angio-deploy report: 3D view unavailable:", err);
}
