"""The browser client's Python side: build the static site (``clients/web`` + the ONNX model + its manifest),
serve it on localhost with the headers multi-threaded WebAssembly needs, and drive it in headless Chromium
for the parity test and the latency benchmark."""
