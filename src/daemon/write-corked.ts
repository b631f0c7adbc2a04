import type { Socket } from 'node:net';

const corked = new WeakSet<Socket>();

/**
 * Writes a line to a socket, holding the socket's writes until the end of the current tick: the
 * lines an agent connection produces together (an ack and the request for the next lease, the
 * replies of one commit) leave in one packet and one system call.
 */
export function writeCorked(socket: Socket, line: string): void {
  if (!corked.has(socket)) {
    corked.add(socket);
    socket.cork();
    process.nextTick(() => {
      corked.delete(socket);
      socket.uncork();
    });
  }
  socket.write(line);
}
