"""A protocol-level stand-in for mongod, for tests on machines without MongoDB.

It is not MongoDB. It speaks the MongoDB wire protocol to real clients
(libmongoc, pymongo); see ../README.md for what it does and does not do.
"""
