"""Deterministic fake records, shaped like (a subset of) Miva's list query rows."""

from __future__ import annotations

from typing import Any

from miva_connect.sandbox.config import SandboxStore

Payload = dict[str, Any]

# 2024-01-01T00:00:00Z: a fixed date keeps replies identical between runs.
_EPOCH = 1704067200


def store(item: SandboxStore, index: int) -> Payload:
    """`Store_Load` / `StoreList_Load_Query` fields."""
    return {
        "id": item.id,
        "code": item.code,
        "name": item.name,
        "license": "",
        "owner": item.owner,
        "email": item.email,
        "company": item.company,
        "address": item.address,
        "city": item.city,
        "state": item.state,
        "zip": item.zip,
        "phone": item.phone,
        "fax": "",
        "country": item.country,
        "currncy_id": item.currency_id,
        "charset": item.charset,
        "branch_id": 1,
        "mnt_warn": "",
        "mnt_close": "",
        "mnt_time": 0,
        "mnt_no_new": 0,
        "mnt_ips": "",
    }


def product(item: SandboxStore, index: int) -> Payload:
    number = index + 1
    return {
        "id": number,
        "code": f"{item.code}-P{number}",
        "sku": f"SKU-{number:04d}",
        "name": f"Sandbox Product {number}",
        "price": 10.0 * number,
        "active": True,
    }


def category(item: SandboxStore, index: int) -> Payload:
    number = index + 1
    return {
        "id": number,
        "code": f"{item.code}-C{number}",
        "name": f"Sandbox Category {number}",
        "active": True,
    }


def order(item: SandboxStore, index: int) -> Payload:
    number = index + 1
    return {
        "id": 1000 + number,
        "orderdate": _EPOCH + 3600 * number,
        "cust_id": number,
        "total": 25.0 * number,
        "ship_email": f"customer{number}@example.com",
    }


def shipment(item: SandboxStore, index: int) -> Payload:
    number = index + 1
    return {"id": number, "order_id": 1000 + number, "code": f"SHP-{number}", "status": 100}


def customer(item: SandboxStore, index: int) -> Payload:
    number = index + 1
    return {
        "id": number,
        "login": f"customer{number}",
        "pw_email": f"customer{number}@example.com",
        "ship_fname": "Sandbox",
        "ship_lname": f"Customer {number}",
    }


def payment(item: SandboxStore, index: int) -> Payload:
    number = index + 1
    return {"id": number, "order_id": 1000 + number, "type": 1, "amount": 25.0 * number}
