"""Bridges: processes built from two clients that carry readings from one service into another
(an MQTT broker's device topics into Event Hubs), started as servers of a cell by their launchers in
``iotbench.transports.servers``. Not emulators: they emulate nothing, they forward."""
