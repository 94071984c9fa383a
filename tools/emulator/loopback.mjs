// Preloaded with `node --import` before fauxqs's dist/cli.js (see
// scripts/with-emulator.sh).
//
// Why: fauxqs 2.4.1 hard-codes `app.listen({ port, host: "0.0.0.0" })` in
// dist/app.js (startFauxqs). Its FAUXQS_HOST setting only changes the host
// written into queue URLs, not the bind address, so there is no option that
// keeps it off the machine's other interfaces. This file makes every TCP
// listen in the process bind 127.0.0.1 instead, and refuses to run if a
// listener still ends up on a non-loopback address.
//
// It also reports the port the kernel picked: with FAUXQS_PORT=0 the server
// gets a free port atomically (no pick-then-bind race), and the port is
// written to $EMULATOR_PORT_FILE once the server is listening.
import fs from "node:fs";
import net from "node:net";

const HOST = "127.0.0.1";
const portFile = process.env.EMULATOR_PORT_FILE;
const origListen = net.Server.prototype.listen;

function isPort(v) {
  return typeof v === "number" || (typeof v === "string" && /^\d+$/.test(v));
}

net.Server.prototype.listen = function (...args) {
  const first = args[0];
  let tcp = false;
  if (first !== null && typeof first === "object" && !(first instanceof net.Server)
      && first.path === undefined && first.fd === undefined && first.handle === undefined
      && first._handle === undefined) {
    // listen({ port, host, ... }, cb)
    args[0] = { ...first, host: HOST };
    tcp = true;
  } else if (first === undefined || typeof first === "function" || isPort(first)) {
    // listen(), listen(cb), listen(port[, host][, backlog][, cb])
    const port = isPort(first) ? first : 0;
    const rest = isPort(first) ? args.slice(1) : args;
    if (typeof rest[0] === "string") rest.shift();
    args = [port, HOST, ...rest];
    tcp = true;
  }
  if (tcp) {
    this.once("listening", () => {
      const addr = this.address();
      if (!addr || typeof addr !== "object" || addr.address !== HOST) {
        console.error(`loopback.mjs: refusing to serve on ${JSON.stringify(addr)}`);
        process.exit(70);
      }
      if (portFile) {
        const tmp = `${portFile}.tmp`;
        fs.writeFileSync(tmp, `${addr.port}\n`);
        fs.renameSync(tmp, portFile);
      }
    });
  }
  return origListen.apply(this, args);
};
