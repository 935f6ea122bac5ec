// Preloaded into reference servers that listen on all interfaces and take no host option
// (server-everything's streamableHttp mode): every server of this Node process listens on
// 127.0.0.1 only, so tests never open a port beyond loopback.
//   NODE_OPTIONS="--require /path/to/loopback.cjs" PORT=N mcp-server-everything streamableHttp
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  } else if (first && typeof first === 'object' && first.port !== undefined && !first.path) {
    args[0] = { ...first, host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
