package com.example;

public record Report(String kind, String body) {
}
