package com.example;

import java.io.BufferedReader;
import java.io.FileReader;
import java.io.IOException;

public class ReportReader {
    public String firstLine(String path) throws IOException {
        BufferedReader reader = new BufferedReader(new FileReader(path));
        return reader.readLine();
    }

    public boolean isSummary(String kind) {
        return kind == "summary";
    }
}
