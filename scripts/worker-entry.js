// The worker's entry module, copied to build/index.js by scripts/build. It hands each event
// to the Rust handlers in the wasm-bindgen glue (build/glue.js) with the bindings and the
// execution context, as workers-rs expects.
//
// A Rust panic or a wasm trap leaves the instance's memory in an unknown state. workers-rs
// records a panic in `__worker_init_state().criticalError`; a trap surfaces here as a
// WebAssembly.RuntimeError. Either way the next event first resets the instance
// (`__wbg_reset_state`, emitted by wasm-bindgen's --experimental-reset-state-function), so
// one bad request cannot poison the isolate for the ones after it.
import { WorkerEntrypoint } from "cloudflare:workers";
import * as glue from "./glue.js";

const state = glue.__worker_init_state();

function markIfCritical(error) {
  if (error instanceof WebAssembly.RuntimeError) {
    console.error("edge-registry: wasm trap", error);
    state.criticalError = true;
  }
}

addEventListener("error", (event) => markIfCritical(event.error));

async function run(handler, event, env, ctx) {
  if (state.criticalError) {
    console.log("edge-registry: starting the wasm instance afresh after a critical error");
    glue.__wbg_reset_state();
    state.criticalError = false;
  }
  try {
    return await handler(event, env, ctx);
  } catch (error) {
    markIfCritical(error);
    throw error;
  }
}

export default class EdgeRegistry extends WorkerEntrypoint {
  fetch(request) {
    return run(glue.fetch, request, this.env, this.ctx);
  }

  scheduled(controller) {
    return run(glue.scheduled, controller, this.env, this.ctx);
  }

  queue(batch) {
    return run(glue.queue, batch, this.env, this.ctx);
  }
}
