// Starts fauxqs for scripts/with-emulator.sh. Same as fauxqs's dist/cli.js
// (which is just `startFauxqs({ logger: true })`), with three differences:
//  - loopback.mjs is loaded first, so the server binds 127.0.0.1, not
//    0.0.0.0, and reports its port;
//  - FAUXQS_LOGGER is honoured: cli.js passes logger: true, which overrides
//    the environment variable, so its request log could not be turned off;
//  - the emulator exits when the process that started it goes away (e.g. a
//    with-emulator.sh killed with SIGKILL), so it never outlives its run.
// The other FAUXQS_* variables (FAUXQS_PORT, FAUXQS_INIT, ...) work as usual.
import "./loopback.mjs";
import { startFauxqs } from "fauxqs";

const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000).unref();

await startFauxqs();
