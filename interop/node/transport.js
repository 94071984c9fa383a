"use strict";
// A re-implementation of the transport of @socket.io/aws-sqs-adapter 0.1.1
// (the package is not on the npm registry reachable here). It behaves like
// upstream on every point the Go port must interoperate with: provisioning
// requests, poll loop, message attributes and msgpack payloads, routing and
// cleanup. Points where upstream's behaviour is surprising are kept on
// purpose and marked "upstream:".

const { randomBytes } = require("node:crypto");
const { ClusterAdapterWithHeartbeat } = require("socket.io-adapter");
const { encode, decode } = require("@msgpack/msgpack");
const {
  CreateTopicCommand,
  SubscribeCommand,
  UnsubscribeCommand,
  PublishCommand,
} = require("@aws-sdk/client-sns");
const {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SetQueueAttributesCommand,
  ReceiveMessageCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
} = require("@aws-sdk/client-sqs");

const debug = require("debug")("socket.io-aws-sqs-adapter");

const DEFAULT_NAME = "socket-io";

function randomId() {
  return randomBytes(8).toString("hex");
}

// The queue policy upstream installs: only the topic may send to the queue.
function queuePolicy(queueArn, topicArn) {
  return JSON.stringify({
    Version: "2012-10-17",
    Id: "__default_policy_ID",
    Statement: [
      {
        Sid: "__owner_statement",
        Effect: "Allow",
        Principal: "*",
        Action: "SQS:SendMessage",
        Resource: queueArn,
        Condition: { ArnEquals: { "aws:SourceArn": topicArn } },
      },
    ],
  });
}

// provision creates (or finds) the topic, creates this server's queue, lets
// the topic write to it and subscribes it with raw delivery, in that order.
async function provision(sns, sqs, opts) {
  const topicName = opts.topicName || DEFAULT_NAME;
  const topic = await sns.send(
    new CreateTopicCommand({ Name: topicName, Tags: opts.topicTags }),
  );
  const topicArn = topic.TopicArn;

  const id = randomId();
  const queueName = opts.queueName
    ? opts.queueName(id)
    : `${opts.queuePrefix || DEFAULT_NAME}-${id}`;
  const queue = await sqs.send(
    new CreateQueueCommand({ QueueName: queueName, tags: opts.queueTags }),
  );
  const queueUrl = queue.QueueUrl;

  const attrs = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ["QueueArn"],
    }),
  );
  const queueArn = attrs.Attributes && attrs.Attributes.QueueArn;

  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: queueUrl,
      Attributes: { Policy: queuePolicy(queueArn, topicArn) },
    }),
  );

  const sub = await sns.send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: "sqs",
      Endpoint: queueArn,
      Attributes: { RawMessageDelivery: "true" },
    }),
  );
  debug("queue [%s] subscribed to topic [%s]", queueName, topicName);

  return {
    topicArn,
    queueName,
    queueUrl,
    queueArn,
    subscriptionArn: sub.SubscriptionArn,
  };
}

function stringAttr(value) {
  return { DataType: "String", StringValue: value };
}

class PubSubAdapter extends ClusterAdapterWithHeartbeat {
  constructor(nsp, sns, opts) {
    super(nsp, opts);
    this.sns = sns;
    this._topicArn = "";
  }

  _send(type, attributes, data) {
    // upstream: `data` is attached only when truthy, so a message whose data
    // is missing (heartbeats, ADAPTER_CLOSE) carries no `data` attribute.
    if (data) {
      attributes.data = { DataType: "Binary", BinaryValue: encode(data) };
    }
    return this.sns
      .send(
        new PublishCommand({
          TopicArn: this._topicArn,
          Message: String(type),
          MessageAttributes: attributes,
        }),
      )
      .then(() => undefined);
  }

  doPublish(message) {
    return this._send(
      message.type,
      { nsp: stringAttr(this.nsp.name), uid: stringAttr(this.uid) },
      "data" in message ? message.data : undefined,
    );
  }

  doPublishResponse(requesterUid, response) {
    return this._send(
      response.type,
      {
        nsp: stringAttr(this.nsp.name),
        uid: stringAttr(this.uid),
        requesterUid: stringAttr(requesterUid),
      },
      response.data,
    );
  }

  // onRawMessage turns one SQS message into a cluster message or response.
  onRawMessage(raw) {
    const attrs = raw.MessageAttributes;
    if (attrs === undefined || raw.Body === undefined) {
      debug("ignore malformed message");
      return;
    }
    const uid = attrs.uid && attrs.uid.StringValue;
    if (uid === this.uid) {
      return; // our own message, echoed by the topic
    }
    const requesterUid = attrs.requesterUid && attrs.requesterUid.StringValue;
    if (requesterUid && requesterUid !== this.uid) {
      return; // a response to another server's request
    }
    const message = {
      type: parseInt(raw.Body, 10),
      nsp: attrs.nsp && attrs.nsp.StringValue,
      uid,
    };
    if (attrs.data) {
      message.data = decode(attrs.data.BinaryValue);
    }
    if (requesterUid) {
      this.onResponse(message);
    } else {
      this.onMessage(message);
    }
  }
}

/**
 * createAdapter(snsClient, sqsClient, opts) returns the adapter factory to
 * pass as Socket.IO's `adapter` option. One call = one queue and one poll
 * loop, shared by every namespace of the server.
 *
 * opts: topicName, topicTags, queuePrefix, queueTags, queueName(id),
 * heartbeatInterval, heartbeatTimeout (ClusterAdapterWithHeartbeat).
 */
function createAdapter(sns, sqs, opts = {}) {
  let closed = false;
  let topicArn;
  const adapters = new Map(); // namespace name -> PubSubAdapter

  const provisioned = provision(sns, sqs, opts);

  async function pollOnce(queueUrl) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 5,
        MessageAttributeNames: ["All"],
      }),
    );
    const messages = out.Messages;
    if (!messages) {
      return;
    }
    for (const m of messages) {
      if (m.MessageAttributes === undefined || m.Body === undefined) {
        continue;
      }
      // upstream: a message without an `nsp` attribute throws here, which
      // aborts the batch before DeleteMessageBatch: the whole batch comes
      // back after the visibility timeout. Kept on purpose.
      const adapter = adapters.get(m.MessageAttributes.nsp.StringValue);
      if (adapter) {
        adapter.onRawMessage(m);
      }
    }
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages.map((m) => ({
          Id: m.MessageId,
          ReceiptHandle: m.ReceiptHandle,
        })),
      }),
    );
  }

  const finished = provisioned
    .then(async (p) => {
      topicArn = p.topicArn;
      for (const adapter of adapters.values()) {
        adapter._topicArn = topicArn;
      }
      // upstream: errors are logged and the loop retries at once.
      while (!closed) {
        try {
          await pollOnce(p.queueUrl);
        } catch (err) {
          debug("poll error: %s", err.message);
        }
      }
      try {
        await Promise.all([
          sqs.send(new DeleteQueueCommand({ QueueUrl: p.queueUrl })),
          sns.send(new UnsubscribeCommand({ SubscriptionArn: p.subscriptionArn })),
        ]);
      } catch (err) {
        debug("cleanup error: %s", err.message);
      }
    })
    .catch((err) => {
      debug("provisioning error: %s", err.message);
    });

  const factory = function (nsp) {
    const adapter = new PubSubAdapter(nsp, sns, opts);
    adapter._topicArn = topicArn;
    adapters.set(nsp.name, adapter);

    const baseInit = adapter.init;
    // upstream: every init() call publishes an INITIAL_HEARTBEAT once
    // provisioning is done; Socket.IO calls init() for each namespace, so a
    // user's `await io.of("/").adapter.init()` sends a second one. If
    // provisioning failed, init() rejects with that error (Socket.IO's own
    // call swallows it) and nothing is published.
    adapter.init = () =>
      provisioned.then(() => {
        baseInit.call(adapter);
      });

    const baseClose = adapter.close;
    adapter.close = async () => {
      adapters.delete(nsp.name);
      const last = adapters.size === 0;
      if (last) {
        // upstream: the pending long poll (up to 5 s) still runs out before
        // the queue is deleted; in practice the ADAPTER_CLOSE published just
        // below comes back to this queue and ends it at once.
        closed = true;
      }
      await baseClose.call(adapter);
      if (last) {
        await finished;
      }
    };
    return adapter;
  };
  // Not upstream: lets tests see what was provisioned.
  factory.provisioned = provisioned;
  return factory;
}

module.exports = { createAdapter, PubSubAdapter, queuePolicy };
