#!/usr/bin/env python3
"""Declares, counts or deletes a durable RabbitMQ queue for bench/messaging.sh (weir's sink
publishes to an existing exchange; with the default exchange a message goes to the queue
named by its routing key).

usage: amqp_queue.py create NAME | count NAME | delete NAME
Needs pika (pip install pika) and the server on 127.0.0.1:5672 (guest/guest).
"""
import sys

import pika


def main(op, name):
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    ch = conn.channel()
    if op == "create":
        ch.queue_delete(name)
        ch.queue_declare(name, durable=True)
    elif op == "count":
        print(ch.queue_declare(name, passive=True).method.message_count)
    elif op == "delete":
        ch.queue_delete(name)
    conn.close()


main(*sys.argv[1:])
